"""Bill runs over gRPC on SQLite and PostgreSQL: accounts, usage from the rating ledger, issued invoices,
idempotent reruns, late CDRs, previews, documents."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timezone

import grpc
import pytest
from lxml import etree

from billing.v1 import billing_pb2 as pb
from tests.integration.billing_support import account_pb, START, BillingStack, billing_stack, days  # noqa: F401 - fixture
from tests.integration.helpers import precondition_reason, rpc_error
from tests.ubl_conformance import check

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UTC = timezone.utc


def account(account_id: str, **kw: object) -> pb.Account:
    return account_pb(account_id, **{"language": "fr", "email": "jeanne@example.org", **kw})


@pytest.fixture(scope="module")
def feb(billing_stack: BillingStack) -> dict:  # noqa: F811
    """ACC-FEB: one Smart M subscriber activated on 10 February, calls in February, billed on 1 March."""
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account("ACC-FEB"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 2, 10, 9, 30, tzinfo=UTC))
    bc.assign("ACC-FEB", sub)
    rated = s.rate("mno", msisdn, [(datetime(2026, 2, 12, 10, 0, tzinfo=UTC), 125, "4930123456"),     # Germany: EU rate
                                   (datetime(2026, 2, 20, 19, 0, tzinfo=UTC), 300, "33612999999"),    # national, in the bundle
                                   (datetime(2026, 2, 27, 22, 59, tzinfo=UTC), 61, "12125550100")])   # North America
    return {"sub": sub, "msisdn": msisdn, "rated": rated}


def test_a_cycle_run_issues_one_valid_invoice_per_account_due(billing_stack: BillingStack, feb: dict) -> None:  # noqa: F811
    s = billing_stack
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    bc = s.billing("mno")
    runs = list(bc.run("manual", cycle_date=date(2026, 3, 1)))
    last = runs[-1]
    assert last.state == pb.BILL_RUN_STATE_DONE and last.issued == 1 and last.failed == 0, list(last.failures)
    invoices = bc.list_invoices(account_id="ACC-FEB").invoices
    assert len(invoices) == 1
    inv = bc.get_invoice(invoices[0].invoice_id)
    assert inv.number == "RT-000001" and inv.period_start == "2026-02-01" and inv.period_end == "2026-02-28"
    fees = {ln.description: ln.amount.amount_micros for ln in inv.lines if ln.charge_type == "fee"}
    # 19 of February's 28 days (10th to 28th) of 19.99, half-up: 13.564... -> 13.56; March in advance: 19.99
    assert fees == {"Abonnement mensuel Smart M": 13_560_000, "Abonnement mensuel Smart M (à échoir)": 19_990_000}
    usage = [ln for ln in inv.lines if ln.charge_type == "usage"]
    rated_total = sum(r.charge_micros for r in feb["rated"])
    assert sum(ln.amount.amount_micros for ln in usage) >= rated_total - 10_000 * len(usage)
    t = inv.totals
    assert t.tax_inclusive.amount_micros == t.tax_exclusive.amount_micros + t.tax.amount_micros
    assert t.payable.amount_micros == t.tax_inclusive.amount_micros - t.prepaid.amount_micros
    xml, content_type, name = bc.download(inv.invoice_id, "xml", chunk_size=1024)
    assert content_type == "application/xml" and name == "RT-000001.xml"
    doc = etree.fromstring(xml)
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
          "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    assert doc.findtext("cbc:ID", namespaces=ns) == "RT-000001"
    assert doc.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns) == f"{t.payable.amount_micros // 10_000 / 100:.2f}"
    # the usage attachment reconciles with the rated CDRs: each CDR once, with its exact charge
    csv = base64.b64decode(doc.findtext("cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", namespaces=ns))
    rows = csv.decode().splitlines()[1:]
    assert sorted(r.split(",")[1] for r in rows) == sorted(r.cdr_id for r in feb["rated"])
    assert sum(int(round(float(r.split(",")[8]) * 1_000_000)) for r in rows) == rated_total


def test_running_the_same_cycle_again_bills_nothing_twice(billing_stack: BillingStack, feb: dict) -> None:  # noqa: F811
    bc = billing_stack.billing("mno")
    again = list(bc.run("manual", cycle_date=date(2026, 3, 1)))[-1]
    assert again.issued == 0 and again.skipped >= 1
    assert len(bc.list_invoices(account_id="ACC-FEB").invoices) == 1
    err = rpc_error(lambda: list(bc.run("on_demand", account_ids=["ACC-FEB"])), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PERIOD_ALREADY_BILLED" and "ACC-FEB" in err.details()
    err = rpc_error(lambda: list(bc.run("manual", cycle_date=date(2026, 3, 1), account_ids=["ACC-FEB"])), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PERIOD_ALREADY_BILLED"


def test_a_cdr_of_february_rated_after_the_bill_goes_on_the_next_one(billing_stack: BillingStack, feb: dict) -> None:  # noqa: F811
    s = billing_stack
    late = s.rate("mno", feb["msisdn"], [(datetime(2026, 2, 25, 12, 0, tzinfo=UTC), 90, "4930123456")])
    s.rate("mno", feb["msisdn"], [(datetime(2026, 3, 5, 12, 0, tzinfo=UTC), 60, "4930123456")])
    s.at(datetime(2026, 4, 1, 6, 0, tzinfo=UTC))  # 08:00 in Paris: 1 April has begun there
    bc = s.billing("mno")
    preview = bc.preview("ACC-FEB")
    assert preview.invoice.number == "PREVIEW" and preview.invoice.period_start == "2026-03-01"
    assert b"<cbc:ID>PREVIEW</cbc:ID>" in preview.ubl_xml and "APERÇU" in preview.html
    check(preview.ubl_xml)
    list(bc.run("on_demand", account_ids=["ACC-FEB"]))
    invoices = sorted(bc.list_invoices(account_id="ACC-FEB").invoices, key=lambda i: i.number)
    assert [i.number for i in invoices] == ["RT-000001", "RT-000002"]
    xml, _, _ = bc.download(invoices[1].invoice_id, "xml")
    assert late[0].cdr_id.encode() in base64.b64decode(re.search(rb'filename="usage.csv">([^<]+)<', xml).group(1))  # type: ignore[union-attr]
    march = bc.get_invoice(invoices[1].invoice_id)
    # Smart M was charged in advance for March on the first bill: no fee for March, April in advance
    assert [ln.description for ln in march.lines if ln.charge_type == "fee"] == ["Abonnement mensuel Smart M (à échoir)"]


def test_html_and_pdf_bills(billing_stack: BillingStack, feb: dict) -> None:  # noqa: F811
    bc = billing_stack.billing("mno")
    first = [i for i in bc.list_invoices(account_id="ACC-FEB").invoices if i.number == "RT-000001"][0]
    html, content_type, _ = bc.download(first.invoice_id, "html")
    text = html.decode()
    assert content_type.startswith("text/html")
    for expected in ("Rulebill Telecom SA", "Jeanne Martin", "Facture RT-000001", "Abonnement mensuel Smart M", "Détail des communications",
                     "Montant à payer"):
        assert expected in text, expected
    pdf, content_type, _ = bc.download(first.invoice_id, "pdf")
    assert content_type == "application/pdf" and pdf.startswith(b"%PDF")
