"""No tenant acts on another tenant's objects, for EVERY RPC that names an object (issue #13 item 6).

The RPCs are found from the registered services' descriptors by tests/integration/cross_tenant.py: an RPC takes an
object id when its request (or a message inside it) has a field named in its ``OBJECT_ID_FIELDS``.  Each one is
called with an
``mvno-beta`` administrator's token holding every privilege an MVNO may hold, on ``mvno-alpha``'s objects
(every id field filled from alpha's objects; ``EXTRA`` fills what a request needs besides ids to pass its
own validation, so that only tenancy can refuse it).  Each call must be refused with NOT_FOUND or
PERMISSION_DENIED, and the whole database must be unchanged afterwards, the audit log included.  The same
requests from the operator get through for every read.  A service added later is probed without editing this
file; a request naming an id this file has no value for fails the test and says which.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import token_pb2 as tpb
from billing.v1 import voucher_pb2 as vpb
from engine.plans.loader import plan_files
from tests.integration.cross_tenant import REFUSED, assert_all_refused, database_rows, probe_rpcs
from tests.integration.rpc_catalogue import every_registered_rpc
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# what a request needs besides ids to pass its own validation, so that only tenancy can refuse it (by RPC, then field path)
EXTRA: Mapping[str, Mapping[str, Any]] = {
    "ProvisionSubscriber": {"imsi": "208150000000999", "billing_account": "ACC-X", "tariff_plan": "TP_ALPHA_SIMPLE",
                            "payment_type": spb.PAYMENT_TYPE_POSTPAID},
    "ChangeSubscriberPlan": {"tariff_plan": "TP_ALPHA_SIMPLE"},
    "SetSubscriberBarring": {"flag": "bar_premium", "barred": True},
    "SetSubscriberCreditLimit": {"credit_limit.amount_micros": 5_000_000, "credit_limit.currency": "EUR"},
    "SuspendSubscriber": {"reason": "probe"}, "DeactivateSubscriber": {"reason": "probe"}, "SuspendTenant": {"reason": "probe"},
    "IssueToken": {"subject": "intruder", "role": tpb.ROLE_CSR},
    "GenerateBatch": {"count": 1},
    "StreamVouchers": {"reveal": True},
    "Redeem": {"request_id": "xt-redeem"},
    "ReserveVoucher": {"request_id": "xt-reserve"},
    "ChangeVouchers": {"event": vpb.VOUCHER_EVENT_BLOCK},
    "ChangeBatch": {"event": vpb.BATCH_EVENT_BLOCK},
    "AmendVoucher": {"dealer": "moved", "set_dealer": True},
    "ReleaseReservation": {"reason": "not yours"},
    "AuthorizeCall": {"destination": "33612999999"},
    "WhatIf": {"default_tariff_plan": "TP_ALPHA_SIMPLE"},
    "RateCdr": {"options.use_bundle_counters": True}, "RateCdrs": {"options.use_bundle_counters": True},
    "GetBundleCounters": {"cycle": "2026-12"},
}
# reads the operator cannot make across tenants today: a mediated file belongs to the tenant that uploaded it
# (MediationDesk looks in the caller's own store), so the operator does not find an MVNO's file by its id
OPERATOR_NOT_ACROSS = frozenset({"GetFileSummary", "ListRejects"})
# every privilege a token may carry on top of its role
EVERY_PRIVILEGE = ("voucher.reveal_pin", "voucher.purge", "voucher.recover")


@pytest.fixture(scope="module")
def export_keys(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real OpenPGP keys, so that an export request is refused for its selection, not for its keys."""
    if not os.path.exists(GPG):
        yield {}
        return
    base = tmp_path_factory.mktemp("gpg")
    recipient, operator = make_key(base / "r", "Printer <p@example.test>"), make_key(base / "o", "Operator <o@example.test>")
    Path(stack.root.vouchers.signing_key_file).write_bytes(operator.secret_key)
    try:
        yield {"recipient_public_key": recipient.public_key}
    finally:
        stop_agent(recipient.home)
        stop_agent(operator.home)


@pytest.fixture(scope="module")
def alpha_objects(stack: Any, export_keys: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """alpha's objects, one of each kind an RPC can name, and per-RPC values only alpha's objects give."""
    mno = stack.client("mno")
    mno.plans.activate(mno.plans.upload(plan_files(REPO / "plans")).version)
    alpha = stack.client("mvno-alpha")
    msisdn = stack.unique_msisdn()
    sub = alpha.subscribers.provision(msisdn, stack.unique_imsi(), "ACC-A", "TP_ALPHA_SIMPLE", payment_type="prepaid")
    plan_version = alpha.plans.upload(plan_files(REPO / "plans"), tenant_id="mvno-alpha")
    batch = alpha.vouchers.generate_batch("vp-alpha-eur-10", 3)
    alpha.vouchers.change_batch(batch.batch_id, "activate")
    revealer = stack.client(token=stack.token("mvno-alpha", privileges=("voucher.reveal_pin",)))
    pins = {v.serial: v.pin for chunk in revealer.vouchers.stream_vouchers(vpb.VoucherSelection(batch_id=batch.batch_id), reveal=True)
            for v in chunk}
    data = (REPO / "tests" / "unit" / "mediation" / "fixtures" / "asterisk_sample.csv").read_bytes()
    header = mpb.MediateFileHeader(layout="asterisk", file_name="alpha.csv", source="london-pbx")
    list(alpha.mediation.rpc.MediateFile(iter([mpb.MediateFileRequest(header=header), mpb.MediateFileRequest(data=data)])))
    token = alpha.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="alpha-clerk", tenant_id="mvno-alpha", role=tpb.ROLE_CSR)).token
    # a reservation of alpha's subscriber, held (two-step recharge)
    stack.client("mvno-alpha", "csr").vouchers.rpc.ReserveVoucher(vpb.ReserveVoucherRequest(
        msisdn=sub.msisdn, pin=pins[batch.first_serial + 2], request_id="xt-held"))
    owned = {
        "tenant_id": "mvno-alpha", "subscriber_id": sub.subscriber_id, "msisdn": sub.msisdn, "a_number": sub.msisdn,
        "token_id": token.token_id, "batch_id": batch.batch_id, "serial": batch.first_serial, "first_serial": batch.first_serial,
        "last_serial": batch.last_serial, "profile_id": "vp-alpha-eur-10", "file_id": hashlib.sha256(data).hexdigest(),
        "version": plan_version.version, "from_version": plan_version.version, "to_version": plan_version.version,
        "candidate_version": plan_version.version, "reservation_id": "xt-held",
    }
    start = Timestamp()
    start.GetCurrentTime()
    cdr = {"service": mpb.CDR_SERVICE_KIND_VOICE, "b_number": "33612999999", "duration_seconds": 60, "start_time.seconds": start.seconds}
    extra = {name: dict(values) for name, values in EXTRA.items()}
    extra["Redeem"]["pin"] = extra.setdefault("ReserveVoucher", {})["pin"] = pins[batch.first_serial + 1]
    extra["ExportVouchers"] = export_keys
    extra["RateCdr"].update({f"cdr.{k}": v for k, v in cdr.items()})
    for name in ("RateCdrs", "WhatIf"):
        extra[name].update({f"cdrs[0].{k}": v for k, v in cdr.items()})
    return owned, extra


def test_another_tenant_is_refused_on_every_rpc_naming_an_object_and_changes_nothing(stack: Any, alpha_objects: Any) -> None:
    owned, extra = alpha_objects
    attacker = stack.token("mvno-beta", "mvno_admin", privileges=EVERY_PRIVILEGE)
    before = database_rows(stack.root.db)
    probes = probe_rpcs(stack.address, every_registered_rpc(), owned, attacker, extra)
    # without gpg the export's keys are refused before its selection is looked at: nothing to learn from it then
    assert_all_refused([p for p in probes if extra["ExportVouchers"] or p.rpc != "ExportVouchers"])
    after = database_rows(stack.root.db)
    assert [name for name in before if before[name] != after[name]] == [], "a refused call changed the database"
    # the probe reached every kind of object (an RPC naming an object is probed as soon as it is registered)
    assert {"GetSubscriber", "SuspendSubscriber", "GetTenant", "RevokeToken", "ListTokens", "ListAuditEntries", "GetBatch", "Redeem",
            "ClearRechargeBar", "CommitReservation", "GetFileSummary", "ListRejects", "GetPlanSetVersion", "ActivatePlanSetVersion",
            "WhatIf", "RateCdr", "AuthorizeCall", "GetBundleCounters", "ListCreditAlerts", "UploadPlanSet", "ProvisionSubscriber",
            "IssueToken"} <= {p.rpc for p in probes}


def test_the_operator_reads_the_same_objects(stack: Any, alpha_objects: Any) -> None:
    owned, extra = alpha_objects
    probes = probe_rpcs(stack.address, every_registered_rpc(), owned, stack.token("mno", privileges=EVERY_PRIVILEGE), extra)
    reads = [p for p in probes if p.rpc.startswith(("Get", "List", "Stream", "Diff")) and p.rpc not in OPERATOR_NOT_ACROSS]
    refused = {p.rpc: p.details for p in reads if p.code in REFUSED}
    assert len(reads) >= 12 and refused == {}
