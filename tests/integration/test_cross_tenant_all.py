"""No tenant acts on another tenant's objects, for EVERY RPC that names an object (issue #13 item 6).

The RPCs are found from the registered services' descriptors by tests/integration/cross_tenant.py: an RPC takes an
object id when its request (or a message inside it) has a field named in its ``OBJECT_ID_FIELDS``.  Each one is
called with an
``mvno-beta`` administrator's token holding every privilege an MVNO may hold, on ``mvno-alpha``'s objects
(every id field filled from alpha's objects; ``EXTRA`` fills what a request needs besides ids to pass its
own validation, so that only tenancy can refuse it).  Each call must be refused with NOT_FOUND or
PERMISSION_DENIED, and the whole database must be unchanged afterwards, the audit log included.  The same
requests from the operator get through for every read.  A service added later is probed without editing this
file; a request naming an id this file has no value for fails the test and says which.  The mixed probe sends
beta's own objects with one of alpha's beside them in every list of ids, repeated message or serial range.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import billing_pb2 as bpb
from billing.v1 import mediation_pb2 as mpb
from billing.v1 import subscriber_pb2 as spb
from billing.v1 import token_pb2 as tpb
from billing.v1 import voucher_pb2 as vpb
from clients.client import RulebillClient
from engine.identity import Role
from engine.plans.loader import plan_files
from tests.integration.billing_support import ONE_YEAR, BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.cross_tenant import REFUSED, assert_all_refused, database_rows, probe_mixed, probe_rpcs
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.rpc_catalogue import every_registered_rpc
from tests.integration.test_plans_rating import sample_files
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]

# what a request needs besides ids to pass its own validation, so that only tenancy can refuse it (by RPC, then field path)
EXTRA: Mapping[str, Mapping[str, Any]] = {
    "ProvisionSubscriber": {"imsi": "208150000000999", "billing_account": "ACC-X", "tariff_plan": "TP_ALPHA_SIMPLE",
                            "payment_type": spb.PAYMENT_TYPE_POSTPAID},
    "ChangeSubscriberPlan": {"tariff_plan": "TP_ALPHA_SIMPLE"},
    "SwapSubscriberSim": {"imsi": "208150000000998", "reason": "probe"},
    "BuyAddOn": {"bundle_id": "BN_ADDON_DATA_5GB", "request_id": "probe-1"},
    "CancelAddOn": {"request_id": "probe-cancel"},
    "SetSubscriberBarring": {"flag": "bar_premium", "barred": True},
    "SetSubscriberCreditLimit": {"credit_limit.amount_micros": 5_000_000, "credit_limit.currency": "EUR"},
    "SuspendSubscriber": {"reason": "probe"}, "DeactivateSubscriber": {"reason": "probe"}, "SuspendTenant": {"reason": "probe"},
    "IssueToken": {"subject": "intruder", "role": tpb.ROLE_CSR},
    "GenerateBatch": {"count": 1},
    "StreamVouchers": {"reveal": True},
    # alpha's own request id (its held reservation's): another tenant neither replays it nor learns it is taken (vouchers_0004)
    "Redeem": {"request_id": "xt-held"},
    "ReserveVoucher": {"request_id": "xt-held"},
    "ChangeVouchers": {"event": vpb.VOUCHER_EVENT_BLOCK},
    "ChangeBatch": {"event": vpb.BATCH_EVENT_BLOCK},
    "AmendVoucher": {"dealer": "moved", "set_dealer": True},
    "ReleaseReservation": {"reason": "not yours"},
    "AuthorizeCall": {"destination": "33612999999"},
    "WhatIf": {"default_tariff_plan": "TP_ALPHA_SIMPLE"},
    "RateCdr": {"options.use_bundle_counters": True}, "RateCdrs": {"options.use_bundle_counters": True},
    "GetBundleCounters": {"cycle": "2026-12"},
    "Rerate": {"period_start.seconds": 1_798_761_600, "period_end.seconds": 1_801_440_000},
    "StartBillRun": {"mode": bpb.BILL_RUN_MODE_MANUAL},
    "DownloadInvoice": {"format": bpb.DOCUMENT_FORMAT_UBL_XML},
    "CreateCreditNote": {"reason": "probe"}, "RebillInvoice": {"reason": "probe"}, "WriteOffInvoice": {"reason": "probe"},
    "DiscardDraft": {"reason": "probe"},
    "RebillRerated": {"reason": "probe", "period_start": "2026-02-01", "period_end": "2026-03-01"},
}
# RPCs whose id names the object they create (refused for another tenant by the request's tenant_id in the first
# probe; with it left empty they create the caller's own; subscriber numbers are unique across tenants: docs/SECURITY.md)
CREATES = frozenset({"ProvisionSubscriber", "CreateAccount"})
# every privilege a token may carry on top of its role
EVERY_PRIVILEGE = ("voucher.reveal_pin", "voucher.purge", "voucher.recover")


@pytest.fixture(scope="module")
def export_keys(billing_stack: BillingStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real OpenPGP keys, so that an export request is refused for its selection, not for its keys."""
    if not os.path.exists(GPG):
        yield {}
        return
    base = tmp_path_factory.mktemp("gpg")
    recipient, operator = make_key(base / "r", "Printer <p@example.test>"), make_key(base / "o", "Operator <o@example.test>")
    Path(billing_stack.root.vouchers.sealing.signing_key_file).write_bytes(operator.secret_key)
    try:
        yield {"recipient_public_key": recipient.public_key}
    finally:
        stop_agent(recipient.home)
        stop_agent(operator.home)


def _alpha_add_on(s: BillingStack, sub_id: str, msisdn: str, account_id: str) -> str:
    """An add-on purchase of alpha's subscriber, stored as BuyAddOn stores one (alpha's sample plan offers no add-on)."""
    from engine.billing.addons import AddOnPurchase, purchase_id_of

    at = datetime(2026, 2, 2, 8, tzinfo=timezone.utc)
    pid = purchase_id_of("mvno-alpha", sub_id, "xt-add-on")
    with s.root.billing.uow() as uow:
        uow.add_ons.add(AddOnPurchase(pid, "mvno-alpha", sub_id, msisdn, account_id, "BN_ALPHA_DATA_5GB", "xt-add-on", "+000001", "2026-02",
                                      "TP_ALPHA_SIMPLE", at, at, datetime(2027, 2, 2, tzinfo=timezone.utc), 1000, "byte", 0, "EUR",
                                      "standard", "", "xt", "prorated"))
        uow.commit()
    return pid


def bearer(s: BillingStack, tenant: str, role: Role, privileges: tuple[str, ...] = ()) -> str:
    """A token of a year (the stack's clock moves by months) with the given privileges."""
    return s.root.tokens.issue(None, f"xt-{tenant}-{role.value}", tenant, role, ONE_YEAR, frozenset(privileges))[1]


@pytest.fixture(scope="module")
def alpha_objects(billing_stack: BillingStack, export_keys: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """alpha's objects, one of each kind an RPC can name, and per-RPC values only alpha's objects give.  On the billing
    stack (the sample plans active from 1 January 2026, a clock the test moves) so that alpha has a bill run and an
    invoice: a subscriber from 1 February, billed on 2 March for February."""
    s = billing_stack
    alpha = s.client("mvno-alpha")
    sub_id, msisdn = s.subscriber("mvno-alpha", "TP_ALPHA_SIMPLE", datetime(2026, 2, 1, 8, tzinfo=timezone.utc))
    account = alpha.billing.create_account(account_pb("XT-ALPHA"))
    alpha.billing.assign(account.account_id, sub_id)
    purchase_id = _alpha_add_on(s, sub_id, msisdn, account.account_id)
    prepaid = alpha.subscribers.provision("+33699000111", "208150000000111", "ACC-P", "TP_ALPHA_SIMPLE", payment_type="prepaid")
    plan_version = alpha.plans.upload({f.path: f.content for f in sample_files(tenant="mvno-alpha")}, tenant_id="mvno-alpha")
    batch = alpha.vouchers.generate_batch("vp-alpha-eur-10", 3)
    alpha.vouchers.change_batch(batch.batch_id, "activate")
    revealer = RulebillClient(s.address, bearer(s, "mvno-alpha", Role.MVNO_ADMIN, ("voucher.reveal_pin",)))
    s.clients.append(revealer)
    pins = {v.serial: v.pin for chunk in revealer.vouchers.stream_vouchers(vpb.VoucherSelection(batch_id=batch.batch_id), reveal=True)
            for v in chunk}
    data = (REPO / "tests" / "unit" / "mediation" / "fixtures" / "asterisk_sample.csv").read_bytes()
    header = mpb.MediateFileHeader(layout="asterisk", file_name="alpha.csv", source="london-pbx")
    mediated = list(alpha.mediation.rpc.MediateFile(iter([mpb.MediateFileRequest(header=header), mpb.MediateFileRequest(data=data)])))
    token = alpha.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="alpha-clerk", tenant_id="mvno-alpha", role=tpb.ROLE_CSR)).token
    # a reservation of alpha's prepaid subscriber, held (two-step recharge)
    s.client("mvno-alpha", "csr").vouchers.rpc.ReserveVoucher(vpb.ReserveVoucherRequest(
        msisdn=prepaid.msisdn, pin=pins[batch.first_serial + 2], request_id="xt-held"))
    s.at(datetime(2026, 3, 2, 8, tzinfo=timezone.utc))
    run = list(alpha.billing.run("manual", cycle_date=date(2026, 3, 1), account_ids=[account.account_id]))[-1]
    invoice = alpha.billing.list_invoices(account_id=account.account_id).invoices[0]
    owned = {
        "tenant_id": "mvno-alpha", "subscriber_id": sub_id, "msisdn": msisdn, "a_number": msisdn,
        "token_id": token.token_id, "batch_id": batch.batch_id, "serial": batch.first_serial, "first_serial": batch.first_serial,
        "last_serial": batch.last_serial, "profile_id": "vp-alpha-eur-10", "file_id": mediated[-1].summary.file_id,
        "version": plan_version.version, "from_version": plan_version.version, "to_version": plan_version.version,
        "candidate_version": plan_version.version, "reservation_id": "xt-held", "account_id": account.account_id,
        "invoice_id": invoice.invoice_id, "run_id": run.run_id, "purchase_id": purchase_id, "resume_run_id": run.run_id,
        "account_ids": [account.account_id], "invoice_ids": [invoice.invoice_id],
    }
    start = Timestamp()
    start.FromDatetime(s.clock.now())
    cdr = {"service": mpb.CDR_SERVICE_KIND_VOICE, "b_number": "33612999999", "duration_seconds": 60, "start_time.seconds": start.seconds}
    extra = {name: dict(values) for name, values in EXTRA.items()}
    extra["Redeem"]["pin"] = pins[batch.first_serial + 1]
    # the very reservation alpha holds: its number, PIN and request id
    extra["ReserveVoucher"].update({"msisdn": prepaid.msisdn, "pin": pins[batch.first_serial + 2]})
    extra["ExportVouchers"] = export_keys
    extra["RateCdr"].update({f"cdr.{k}": v for k, v in cdr.items()})
    for name in ("RateCdrs", "WhatIf"):
        extra[name].update({f"cdrs[0].{k}": v for k, v in cdr.items()})
    return owned, extra


def test_another_tenant_is_refused_on_every_rpc_naming_an_object_and_changes_nothing(billing_stack: BillingStack,
                                                                                      alpha_objects: Any) -> None:
    owned, extra = alpha_objects
    s = billing_stack
    attacker = bearer(s, "mvno-beta", Role.MVNO_ADMIN, EVERY_PRIVILEGE)
    before = database_rows(s.root.db)
    probes = probe_rpcs(s.address, every_registered_rpc(), owned, attacker, extra)
    # without gpg the export's keys are refused before its selection is looked at: nothing to learn from it then
    assert_all_refused([p for p in probes if extra["ExportVouchers"] or p.rpc != "ExportVouchers"])
    after = database_rows(s.root.db)
    assert [name for name in before if before[name] != after[name]] == [], "a refused call changed the database"
    # the probe reached every kind of object (an RPC naming an object is probed as soon as it is registered)
    assert {"GetSubscriber", "SuspendSubscriber", "GetTenant", "RevokeToken", "ListTokens", "ListAuditEntries", "GetBatch", "Redeem",
            "ClearRechargeBar", "CommitReservation", "GetFileSummary", "ListRejects", "GetPlanSetVersion", "ActivatePlanSetVersion",
            "WhatIf", "RateCdr", "AuthorizeCall", "GetBundleCounters", "ListCreditAlerts", "UploadPlanSet", "ProvisionSubscriber",
            "IssueToken", "GetAccount", "AssignSubscriber", "GetInvoice", "DownloadInvoice", "CreateCreditNote", "RecordPayment",
            "WriteOffInvoice", "GetBillRun", "StartBillRun", "PreviewBill", "Rerate"} <= {p.rpc for p in probes}


def test_another_tenant_is_refused_by_each_object_s_own_tenant_not_only_by_the_request_s(billing_stack: BillingStack,
                                                                                         alpha_objects: Any) -> None:
    """The same probe with every ``tenant_id`` left empty (the caller's own tenant): the request's tenant check passes,
    so each call on alpha's objects must be refused by the object's own tenant check, writes included."""
    owned, extra = alpha_objects
    s = billing_stack
    attacker = bearer(s, "mvno-beta", Role.MVNO_ADMIN, EVERY_PRIVILEGE)
    before = database_rows(s.root.db)
    # objects of alpha's kinds that exist nowhere: a call naming alpha's may answer only what one naming these answers
    unknown = {**{k: f"xt-none-{k}" for k in owned if isinstance(owned[k], str)}, "msisdn": "33699999990", "a_number": "33699999990",
               "serial": 1, "first_serial": 1, "last_serial": 1, "version": 999, "from_version": 999, "to_version": 999,
               "candidate_version": 999, "account_ids": ["xt-none"], "invoice_ids": ["xt-none"]}
    probes = probe_rpcs(s.address, [r for r in every_registered_rpc() if r.name not in CREATES], owned, attacker, extra,
                        tenant_cleared=True, unknown=unknown)
    assert_all_refused([p for p in probes if extra["ExportVouchers"] or p.rpc != "ExportVouchers"])
    after = database_rows(s.root.db)
    # nothing of anyone's was changed or removed; what was added is beta's own (a CDR rated for beta as an unknown number's)
    assert {name: sorted(set(before[name]) - set(after[name])) for name in before if set(before[name]) - set(after[name])} == {}
    added = {name: sorted(set(after[name]) - set(before[name])) for name in after}
    assert [row for rows in added.values() for row in rows if "'mvno-beta'" not in row] == []
    assert sum(map(len, added.values())) <= 2          # RateCdr and RateCdrs rate one CDR each
    # the RPCs naming both a tenant and an object were each probed by the object alone
    assert {"UpdateAccount", "AddOneOffCharge", "DownloadInvoice", "IssueDrafts", "DiscardDraft", "RebillInvoice", "RecordPayment",
            "WriteOffInvoice", "GetPlanSetVersion", "ActivatePlanSetVersion", "DiffPlanSetVersions", "GetBundleCounters",
            "ListCreditAlerts", "StartBillRun", "GetAccount", "GetInvoice", "PreviewBill"} <= {p.rpc for p in probes}


def test_the_operator_reads_the_same_objects(billing_stack: BillingStack, alpha_objects: Any) -> None:
    owned, extra = alpha_objects
    operator = bearer(billing_stack, "mno", Role.OPERATOR_ADMIN, EVERY_PRIVILEGE)
    probes = probe_rpcs(billing_stack.address, every_registered_rpc(), owned, operator, extra)
    reads = [p for p in probes if p.rpc.startswith(("Get", "List", "Stream", "Diff"))]
    refused = {p.rpc: p.details for p in reads if p.code in REFUSED}
    assert refused == {}
    # every read naming an object, by name: a read that drops out of the probe (its request no longer names an id the
    # probe knows) fails here rather than going unnoticed; a new read is added to this list on purpose
    assert sorted(p.rpc for p in reads) == [
        "DiffPlanSetVersions", "GetAccount", "GetBatch", "GetBillRun", "GetBundleCounters", "GetFileSummary", "GetInvoice",
        "GetPlanSetVersion", "GetSubscriber", "GetTenant", "GetVoucher", "ListAccounts", "ListAddOns", "ListAuditEntries",
        "ListCreditAlerts", "ListInvoices", "ListPlanSetVersions", "ListRejects", "ListSubscribers", "ListTokens", "StreamVouchers"]


def test_an_mvno_cannot_upload_the_operator_s_wholesale_price_of_its_own_traffic(billing_stack: BillingStack) -> None:
    """A wholesale plan is what the operator charges an MVNO: an MVNO's plan set holding one (here the operator's own
    TP_WS_ALPHA at price 0) is refused, with every plan it may not hold named at its file, line and column."""
    s = billing_stack
    files = {path: text.replace('price: "', 'price: "0') if path.startswith("rates/wholesale/") else text
             for path, text in plan_files(REPO / "plans").items()}
    clients = {who: s.client(*who) for who in (("mvno-alpha", "product_manager"), ("mvno-alpha", "mvno_admin"), ("mno", ""))}
    before = database_rows(s.root.db)
    for role in ("product_manager", "mvno_admin"):
        err = rpc_error(lambda: clients[("mvno-alpha", role)].plans.upload(files), grpc.StatusCode.INVALID_ARGUMENT)
        fields = field_violations(err)
        assert "plans.wholesale-not-operator" in fields["files[tariff_plans/wholesale/TP_WS_ALPHA.yaml]:6:10"]
        assert "plans.foreign-tenant" in fields["files[tariff_plans/wholesale/TP_WS_ALPHA.yaml]:5:9"]
        assert "plans.foreign-tenant" in fields["files[tariff_plans/retail/TP_SMART_M.yaml]:5:9"]
        assert "plans.wholesale-not-operator" in fields["files[tariff_plans/wholesale/TP_WS_BETA.yaml]:6:10"]
        assert not any("TP_ALPHA_SIMPLE" in key for key in fields)
    # nor may the operator upload them as alpha's set; ValidatePlanSet says the same to alpha
    err = rpc_error(lambda: clients[("mno", "")].plans.upload(files, tenant_id="mvno-alpha"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "files[tariff_plans/wholesale/TP_WS_ALPHA.yaml]:6:10" in field_violations(err)
    report = clients[("mvno-alpha", "product_manager")].plans.validate(files)
    assert not report.valid and {(p.file, p.code) for p in report.problems} >= {
        ("tariff_plans/wholesale/TP_WS_ALPHA.yaml", "plans.wholesale-not-operator"), ("tariff_plans/retail/TP_SMART_M.yaml", "plans.foreign-tenant")}
    assert database_rows(s.root.db) == before


def test_a_request_naming_its_own_objects_and_another_tenant_s_reads_and_changes_nothing_of_the_other_s(
        billing_stack: BillingStack, alpha_objects: Any) -> None:
    """The mixed probe (tests/integration/cross_tenant.py ``probe_mixed``): every RPC whose request can name several
    objects (a list of ids, a repeated message, a serial range) is called by beta with its own objects and one of
    alpha's beside them.  Each is refused as a whole, or answers about beta's alone: nothing of alpha's is in the reply,
    and nothing of alpha's (nor anyone's but beta's) is changed, the audit log included."""
    victim, extra = alpha_objects
    s = billing_stack
    beta = s.client("mvno-beta")
    sub_id, msisdn = s.subscriber("mvno-beta", "TP_BETA_DATA", datetime(2026, 2, 1, 8, tzinfo=timezone.utc))
    account = beta.billing.create_account(account_pb("XT-BETA"))
    beta.billing.assign(account.account_id, sub_id)
    s.at(datetime(2026, 3, 2, 8, tzinfo=timezone.utc))
    list(beta.billing.run("on_demand", account_ids=[account.account_id], review=True))
    draft = beta.billing.list_invoices(account_id=account.account_id).invoices[0]
    batch = beta.vouchers.generate_batch("vp-beta-eur-20", 2)
    beta.vouchers.change_batch(batch.batch_id, "activate")
    own = {"tenant_id": "mvno-beta", "a_number": msisdn, "account_ids": [account.account_id], "invoice_ids": [draft.invoice_id],
           "first_serial": batch.first_serial, "last_serial": batch.last_serial, "batch_id": "", "resume_run_id": "",
           "candidate_version": beta.plans.upload({f.path: f.content for f in sample_files(tenant="mvno-beta")},
                                                  tenant_id="mvno-beta").version}
    beta.plans.activate(own["candidate_version"])   # what-if compares a candidate with the version in force
    attacker = bearer(s, "mvno-beta", Role.MVNO_ADMIN, EVERY_PRIVILEGE)
    before = database_rows(s.root.db)
    probes = probe_mixed(s.address, every_registered_rpc(), own, victim, attacker, extra)
    assert {"StartBillRun", "IssueDrafts", "RateCdrs", "WhatIf", "StreamVouchers", "ChangeVouchers"} <= {p.rpc for p in probes}
    markers = ("mvno-alpha", victim["account_id"], victim["invoice_id"], victim["subscriber_id"], victim["batch_id"])
    leaked = {p.rpc: [m for m in markers if m in p.reply] for p in probes if any(m in p.reply for m in markers)}
    assert leaked == {}, "a reply held the other tenant's objects"
    assert {p.rpc: f"{p.code.name} {p.details}" for p in probes if p.code is not None and p.code not in REFUSED} == {}
    after = database_rows(s.root.db)
    gone = {name: sorted(set(before[name]) - set(after[name])) for name in before}
    added = {name: sorted(set(after[name]) - set(before[name])) for name in after}
    # what changed is beta's own (its vouchers blocked, its CDR rated, its own audit entries)
    assert [row for rows in gone.values() for row in rows if "'mvno-beta'" not in row] == []
    assert [row for rows in added.values() for row in rows if "'mvno-beta'" not in row] == []
    # a refused list refuses all of it: beta's own draft is not issued, nor is its account billed by a run naming alpha's
    assert beta.billing.get_invoice(draft.invoice_id).state == bpb.INVOICE_STATE_DRAFT
