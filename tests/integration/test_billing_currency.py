"""Amounts sent to billing are in the currency of what they are booked on, over a real port on both databases: a
payment, a one-off charge or a credited line sent in another currency is refused on its ``currency`` field (it used
to be booked as the invoice's currency: 100 GBP paid 100 EUR), and the CLI sends no currency unless told."""

from __future__ import annotations

from datetime import date, datetime, timezone

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from clients.cli import build_parser, main
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode


@pytest.fixture(scope="module")
def issued(billing_stack: BillingStack) -> pb.Invoice:  # noqa: F811
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-CUR"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-CUR", sub, valid_from=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    s.rate("mno", msisdn, [(datetime(2026, 2, 3, 9, 0, tzinfo=UTC), 3 * 3600, "33140000000")])
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-CUR"]))
    inv = bc.get_invoice(bc.list_invoices(account_id="ACC-CUR").invoices[0].invoice_id)
    assert inv.currency == "EUR" and inv.totals.payable.amount_micros > 3_000_000
    return inv


def cli(s: BillingStack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--server", s.address, "--token", s.token("mno")])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_amount_in_another_currency_is_refused_on_its_field(billing_stack: BillingStack, issued: pb.Invoice) -> None:  # noqa: F811
    bc = billing_stack.billing("mno")
    err = rpc_error(lambda: bc.record_payment(issued.invoice_id, 1_000_000, "GBP", "gbp-1"), C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["amount.currency"]
    err = rpc_error(lambda: bc.add_charge("ACC-CUR", "OC_ACTIVATION", 5_000_000, "USD"), C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["amount.currency"]
    line = issued.lines[0]
    err = rpc_error(lambda: bc.credit_note(issued.invoice_id, "goodwill", [(line.line_id, 10_000, "EUR"), (line.line_id, 10_000, "CHF")]),
                    C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["lines[1].amount.currency"]
    after = bc.get_invoice(issued.invoice_id)
    assert after.paid.amount_micros == 0 and after.credited.amount_micros == 0, "a refused amount was booked"
    # the booked currency, in any case, or none at all, is taken
    assert bc.record_payment(issued.invoice_id, 1_000_000, "eur", "eur-1").paid.amount_micros == 1_000_000
    assert bc.record_payment(issued.invoice_id, 1_000_000, "", "none-1").paid.amount_micros == 2_000_000
    assert bc.add_charge("ACC-CUR", "OC_ACTIVATION", 5_000_000, "").amount.currency == "EUR"


def test_the_cli_sends_a_currency_only_when_given(billing_stack: BillingStack, issued: pb.Invoice,  # noqa: F811
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    s = billing_stack
    code, _, err = cli(s, capsys, "invoices", "pay", issued.invoice_id, "--amount", "100", "--currency", "GBP", "--reference", "cli-gbp")
    assert code == 2 and "amount.currency" in err and "GBP" in err
    code, _, err = cli(s, capsys, "accounts", "charge", "ACC-CUR", "OC_ACTIVATION", "--amount", "5", "--currency", "GBP")
    assert code == 2 and "amount.currency" in err
    before = s.billing("mno").get_invoice(issued.invoice_id).paid.amount_micros
    code, out, err = cli(s, capsys, "invoices", "pay", issued.invoice_id, "--amount", "1.00", "--reference", "cli-plain")
    assert code == 0, err
    assert s.billing("mno").get_invoice(issued.invoice_id).paid.amount_micros == before + 1_000_000
    parser = build_parser()
    for argv in (["invoices", "pay", "INV", "--amount", "1", "--reference", "r"], ["invoices", "credit-note", "INV", "--reason", "r"],
                 ["accounts", "charge", "ACC", "OC_X", "--amount", "1"]):
        assert parser.parse_args(argv).currency == "", f"{' '.join(argv[:2])} names a currency of its own"


def test_an_account_is_in_its_tenants_billing_currency(billing_stack: BillingStack) -> None:  # noqa: F811
    """A tenant bills in its profile's currency (plans/billing/<tenant>.yaml, EUR for the samples): an account in another
    could never be billed, so it is refused when created or changed."""
    bc = billing_stack.billing("mno")
    err = rpc_error(lambda: bc.create_account(account_pb("ACC-USD", currency="USD")), C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["currency"] and "EUR" in field_violations(err)["currency"]
    assert bc.create_account(account_pb("ACC-EUR-ONLY", currency="eur")).currency == "EUR"
    err = rpc_error(lambda: bc.update_account(pb.Account(account_id="ACC-EUR-ONLY", currency="GBP"), ["currency"]), C.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["currency"]
    alpha = billing_stack.billing("mvno-alpha")
    rpc_error(lambda: alpha.create_account(account_pb("ALPHA-CHF", currency="CHF")), C.INVALID_ARGUMENT)
