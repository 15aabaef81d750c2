"""No tenant acts on another tenant's objects, for EVERY RPC that names an object (issue #13 item 6).

The RPCs are found from the registered services' descriptors: an RPC takes an object id when its request
(or a message inside it) has a field named in :data:`OBJECT_ID_FIELDS`.  Each one is called with an
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

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import MetaData, select

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import token_pb2 as tpb
from billing.v1 import voucher_pb2 as vpb
from engine.plans.loader import plan_files
from tests.integration.rpc_catalogue import Rpc, call, every_registered_rpc
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
REFUSED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)

# request fields that name an object some tenant owns (not filters such as page tokens, not idempotency keys)
OBJECT_ID_FIELDS = frozenset({
    "tenant_id", "subscriber_id", "msisdn", "a_number", "token_id", "batch_id", "serial", "first_serial", "last_serial",
    "profile_id", "file_id", "version", "from_version", "to_version", "candidate_version", "reservation_id", "account_id",
    "invoice_id", "bill_run_id", "payment_id",
})
# what a request needs besides ids to pass its own validation (by RPC, then field path)
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
    "ChangeVouchers": {"event": vpb.VOUCHER_EVENT_BLOCK},
    "ChangeBatch": {"event": vpb.BATCH_EVENT_BLOCK},
    "AmendVoucher": {"dealer": "moved", "set_dealer": True},
    "AuthorizeCall": {"destination": "33612999999"},
    "UploadPlanSet": {},
    "WhatIf": {"default_tariff_plan": "TP_ALPHA_SIMPLE"},
    "RateCdr": {"options.use_bundle_counters": True}, "RateCdrs": {"options.use_bundle_counters": True},
    "GetBundleCounters": {"cycle": "2026-12"},
}
# reads the operator cannot make across tenants today: a mediated file belongs to the tenant that uploaded it
# (MediationDesk looks in the caller's own store), so the operator does not find an MVNO's file by its id
OPERATOR_NOT_ACROSS = frozenset({"GetFileSummary", "ListRejects"})
# every privilege a token may carry on top of its role
EVERY_PRIVILEGE = ("voucher.reveal_pin", "voucher.purge", "voucher.recover")


def id_paths(message: Descriptor, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of the object id fields of a request; a repeated message is probed through its first entry."""
    out: list[str] = []
    for f in message.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < 3 and not f.message_type.full_name.startswith("google.protobuf.") and not f.message_type.GetOptions().map_entry:
                out += id_paths(f.message_type, f"{prefix}{f.name}{'[0]' if f.is_repeated else ''}.", depth + 1)
        elif f.name in OBJECT_ID_FIELDS and not f.is_repeated:
            out.append(f"{prefix}{f.name}")
    return out


def _set(message: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        if name.endswith("[0]"):
            items = getattr(message, name[:-3])
            message = items[0] if len(items) else items.add()
        else:
            message = getattr(message, name)
    setattr(message, leaf, value)


def build_request(rpc: Rpc, owned: Mapping[str, Any], shared: Mapping[str, Any] = {}) -> Any:
    request = rpc.request_class()
    for path, value in {**shared.get(rpc.name, {}), **EXTRA.get(rpc.name, {})}.items():
        _set(request, path, value)
    for path in id_paths(rpc.request_class.DESCRIPTOR):
        leaf = path.rsplit(".", 1)[-1]
        value = owned.get(path, owned.get(leaf))
        if value is None:
            raise KeyError(f"{rpc.service}.{rpc.name}: no object of the owner for id field {path!r}; add it to `owned`")
        _set(request, path, value)
    return request


def probe(stack: Any, bearer: str, owned: Mapping[str, Any], shared: Mapping[str, Any]) -> dict[str, grpc.StatusCode | None]:
    """Each RPC naming an object, called as ``bearer`` on the owner's objects: its status (None: it succeeded)."""
    out: dict[str, grpc.StatusCode | None] = {}
    with grpc.insecure_channel(stack.address) as channel:
        for rpc in every_registered_rpc():
            if not id_paths(rpc.request_class.DESCRIPTOR):
                continue
            request = build_request(rpc, owned, shared)
            try:
                call(channel, rpc, request, metadata=[("authorization", f"Bearer {bearer}")], timeout=60)
                out[rpc.name] = None
            except grpc.RpcError as err:
                out[rpc.name] = err.code()
                out[f"{rpc.name}:details"] = err.details()  # type: ignore[assignment]
    return out


def database(stack: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the audit log included): what a refused call must leave exactly as it was."""
    meta = MetaData()
    meta.reflect(stack.root.db)
    with stack.root.db.connect() as conn:
        return {name: sorted((tuple(map(repr, row)) for row in conn.execute(select(table))), key=repr)
                for name, table in sorted(meta.tables.items())}


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
    list(alpha.mediation.rpc.MediateFile(iter([mpb.MediateFileRequest(header=mpb.MediateFileHeader(layout="asterisk", file_name="alpha.csv")),
                                               mpb.MediateFileRequest(data=data)])))
    token = alpha.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="alpha-clerk", tenant_id="mvno-alpha", role=tpb.ROLE_CSR)).token
    owned = {
        "tenant_id": "mvno-alpha", "subscriber_id": sub.subscriber_id, "msisdn": sub.msisdn, "a_number": sub.msisdn,
        "token_id": token.token_id, "batch_id": batch.batch_id, "serial": batch.first_serial, "first_serial": batch.first_serial,
        "last_serial": batch.last_serial, "profile_id": "vp-alpha-eur-10", "file_id": hashlib.sha256(data).hexdigest(),
        "version": plan_version.version, "from_version": plan_version.version, "to_version": plan_version.version,
        "candidate_version": plan_version.version,
    }
    start = Timestamp()
    start.GetCurrentTime()
    cdr = {"service": mpb.CDR_SERVICE_KIND_VOICE, "b_number": "33612999999", "duration_seconds": 60, "start_time.seconds": start.seconds}
    shared = {"Redeem": {"pin": pins[batch.first_serial + 1]}, "ExportVouchers": export_keys,
              "RateCdr": {f"cdr.{k}": v for k, v in cdr.items()},
              "RateCdrs": {f"cdrs[0].{k}": v for k, v in cdr.items()},
              "WhatIf": {f"cdrs[0].{k}": v for k, v in cdr.items()}}
    return owned, shared


def test_another_tenant_is_refused_on_every_rpc_naming_an_object_and_changes_nothing(stack: Any, alpha_objects: Any) -> None:
    owned, shared = alpha_objects
    attacker = stack.token("mvno-beta", "mvno_admin", privileges=EVERY_PRIVILEGE)
    before = database(stack)
    got = probe(stack, attacker, owned, shared)
    untestable = set() if shared["ExportVouchers"] else {"ExportVouchers"}   # without gpg the keys are refused first
    wrong = [f"{name}: {code.name if code else 'OK'} {got.get(f'{name}:details', '')}" for name, code in got.items()
             if ":" not in name and code not in REFUSED and name not in untestable]
    assert not wrong, "calls on another tenant's objects were not refused:\n" + "\n".join(wrong)
    after = database(stack)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], f"a refused call changed {changed}"
    # the probe reached every kind of object (a new id-taking RPC is probed as soon as it is registered)
    probed = {name for name in got if ":" not in name}
    assert {"GetSubscriber", "SuspendSubscriber", "GetTenant", "RevokeToken", "ListTokens", "ListAuditEntries", "GetBatch", "Redeem",
            "ClearRechargeBar", "GetFileSummary", "ListRejects", "GetPlanSetVersion", "ActivatePlanSetVersion", "WhatIf", "RateCdr",
            "AuthorizeCall", "GetBundleCounters", "ListCreditAlerts", "UploadPlanSet", "ProvisionSubscriber", "IssueToken"} <= probed


def test_the_operator_reads_the_same_objects(stack: Any, alpha_objects: Any) -> None:
    owned, shared = alpha_objects
    got = probe(stack, stack.token("mno", privileges=EVERY_PRIVILEGE), owned, shared)
    reads = {name: code for name, code in got.items() if ":" not in name and name.startswith(("Get", "List", "Stream", "Diff"))
             and name not in OPERATOR_NOT_ACROSS}
    refused = {name: code for name, code in reads.items() if code in REFUSED}
    assert len(reads) >= 12 and refused == {}, {n: got.get(f"{n}:details") for n in refused}
