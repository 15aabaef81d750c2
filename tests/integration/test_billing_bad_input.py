"""The issue's bad billing input over a real port, on SQLite and PostgreSQL: each is a clear error naming the account
or the field, and nothing is issued (no invoice, no number taken).  The cases other modules already cover over gRPC:
an account without an address and a country without a tax table (test_billing_service
``test_an_account_without_address_cannot_be_billed_and_nothing_is_issued``), anchors 0 and 32 and an unknown discount
plan on an account (``test_bad_accounts_get_every_bad_field``), a credit note above the invoice
(``test_credit_notes_above_the_invoice_and_payments``), a period already billed (test_billing_runs
``test_running_the_same_cycle_again_bills_nothing_twice``).  Here: a VAT id the invoice needs, a discount plan that
references an unknown tariff plan, and all of them again in one place with the proof that nothing was issued."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, precondition_reason, rpc_error
from engine.settings import Settings
from servers.root import build_root
from tests.integration.test_plans_rating import REPO, sample_files

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode


def numbers(bc: object) -> set[str]:
    return {i.number for i in bc.list_invoices(page_size=1000).invoices}  # type: ignore[attr-defined]


def test_each_bad_input_is_named_and_issues_nothing(billing_stack: BillingStack) -> None:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    # a reverse-charge customer needs its VAT id on the invoice (EN 16931 BR-AE-02)
    bc.create_account(account_pb("ACC-RC", tax_exemption="reverse_charge", vat_id=""))
    bc.create_account(account_pb("ACC-OK"))
    for acc in ("ACC-RC", "ACC-OK"):
        sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
        bc.assign(acc, sub)
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    before = numbers(bc)
    err = rpc_error(lambda: bc.preview("ACC-RC"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "BILL_INPUT" and "ACC-RC" in err.details() and "vat_id" in err.details()
    run = list(bc.run("on_demand", account_ids=["ACC-RC"]))[-1]
    assert (run.issued, run.failed) == (0, 1) and run.failures[0].account_id == "ACC-RC" and "VAT id" in run.failures[0].reason
    assert numbers(bc) == before                                            # nothing issued, no number taken
    # a cycle run bills the good account and names the bad one
    run = list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-RC", "ACC-OK"]))[-1]
    assert (run.issued, run.failed) == (1, 1) and [f.account_id for f in run.failures] == ["ACC-RC"]
    ok = bc.list_invoices(account_id="ACC-OK").invoices
    assert len(ok) == 1 and numbers(bc) == before | {ok[0].number} and not bc.list_invoices(account_id="ACC-RC").invoices
    # fixed: it bills
    bc.update_account(pb.Account(account_id="ACC-RC", vat_id="DE123456789"), ["vat_id"])
    assert list(bc.run("on_demand", account_ids=["ACC-RC"]))[-1].issued == 1

    # anchors 0 and 32 name the field
    for anchor in (0, 32):
        err = rpc_error(lambda: bc.create_account(account_pb("ACC-ANCHOR", anchor_day=anchor)), C.INVALID_ARGUMENT)
        assert "1..31" in field_violations(err)["anchor_day"]
    # a tax table missing for the account's country names the account and the country
    bc.create_account(account_pb("ACC-US", address=pb.PostalAddress(lines=["1 Main St"], city="Austin", country="US")))
    err = rpc_error(lambda: bc.preview("ACC-US"), C.FAILED_PRECONDITION)
    assert "ACC-US" in err.details() and "no tax table for country US" in err.details()
    # a credit note above the invoice's total
    inv = ok[0]
    err = rpc_error(lambda: bc.credit_note(inv.invoice_id, "too much", [("1", 10_000_000_000, "EUR")]), C.INVALID_ARGUMENT)
    assert "lines[0].amount" in field_violations(err)
    # amounts finer than the currency's minor units (EUR 0.005) on a credit note line or a payment
    err = rpc_error(lambda: bc.credit_note(inv.invoice_id, "half a cent", [("1", 5_000, "EUR")]), C.INVALID_ARGUMENT)
    assert "minor units" in field_violations(err)["lines[0].amount"]
    err = rpc_error(lambda: bc.record_payment(inv.invoice_id, 1_005_000, "EUR", "pay-fine"), C.INVALID_ARGUMENT)
    assert "minor units" in field_violations(err)["amount"]
    # a bill run for a period already billed names the account and the period
    err = rpc_error(lambda: list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-OK"])), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PERIOD_ALREADY_BILLED" and "ACC-OK" in err.details() and "2026-02-01" in err.details()
    assert len(bc.list_invoices(account_id="ACC-OK").invoices) == 1

    # a discount plan that references an unknown tariff plan: the upload names the file, line and column; nothing stored
    plans = s.client("mno").stub(prpc.PlanServiceStub)
    listed = len(plans.ListPlanSetVersions(ppb.ListPlanSetVersionsRequest()).versions)
    files = sample_files({"discounts/DP_LOYALTY_2EUR.yaml": ("level: period\n", "level: period\nplans: [TP_GHOST]\n")})
    err = rpc_error(lambda: plans.UploadPlanSet(ppb.UploadPlanSetRequest(files=files)), C.INVALID_ARGUMENT)
    found = {k: v for k, v in field_violations(err).items() if "TP_GHOST" in v}
    assert list(found) == ["files[discounts/DP_LOYALTY_2EUR.yaml]:6:9"], field_violations(err)
    assert len(plans.ListPlanSetVersions(ppb.ListPlanSetVersionsRequest()).versions) == listed
    # and an account naming a discount plan the plan set does not have
    err = rpc_error(lambda: bc.create_account(account_pb("ACC-DP", discount_plans=["DP_GHOST"])), C.INVALID_ARGUMENT)
    assert "DP_GHOST" in field_violations(err)["discount_plans[0]"]


def test_the_server_does_not_start_with_a_bad_charge_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / "billing" / "more.yaml").write_text("kind: charge_rules\nrules:\n"
                                                 "  - {id: CR_SIM, tenant: mno, when: subscriber_joined, charge: OC_SIM_CARD}\n"
                                                 "  - {id: CR_ALPHA, tenant: mvno-alpha, when: invoice_paid, charge: OC_PENALTY}\n",
                                                 encoding="utf-8")
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'rb.db'}", rules_dir=rules)
    with pytest.raises(ValueError) as err:
        build_root(settings)
    text = str(err.value)
    assert "more.yaml:3:64: ref.dangling" in text and "OC_SIM_CARD" in text          # every problem, each where it is
    assert "more.yaml:4:46: value.enum" in text and "invoice_paid" in text and "more.yaml:4:68: ref.dangling" in text


def test_a_day_outside_the_calendar_the_server_works_in_is_refused_on_its_field(billing_stack: BillingStack) -> None:  # noqa: F811
    """Year 1 or 9999 parses as an ISO date, but a bill period or a month added to it leaves the calendar: every day a
    billing request names is refused on its field, as a timestamp outside 1970..2200 is, and nothing is issued."""
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-FAR"))
    before = numbers(bc)
    for text in ("9999-12-01", "0001-01-01", "2200-01-01", "1969-12-31"):
        calls = {
            "cycle_date": [lambda: bc.rpc.PreviewBill(pb.PreviewBillRequest(account_id="ACC-FAR", cycle_date=text)),
                           lambda: list(bc.rpc.StartBillRun(pb.StartBillRunRequest(mode=pb.BILL_RUN_MODE_MANUAL, cycle_date=text,
                                                                                    account_ids=["ACC-FAR"])))],
            "period_end": [lambda: bc.rpc.RebillRerated(pb.RebillReratedRequest(period_start="2026-02-01", period_end=text, reason="x"))],
            "charge_date": [lambda: bc.rpc.AddOneOffCharge(pb.AddOneOffChargeRequest(account_id="ACC-FAR", code="OC_ACTIVATION",
                                                                                      charge_date=text))],
        }
        for field, probes in calls.items():
            for probe in probes:
                err = rpc_error(probe, C.INVALID_ARGUMENT)
                assert "1970-01-01 to before 2200-01-01" in field_violations(err)[field], (text, field)
    assert numbers(bc) == before
