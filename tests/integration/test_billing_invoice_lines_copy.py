"""Invoice lines stored by a bill run's batch (``SqlBillingUnitOfWork.add_invoices``): on PostgreSQL as one COPY text
written by ``store.billing._lines_copy_text`` (row by row when a value holds a character COPY escapes), on SQLite by
INSERT.  Whatever the text of the ids, the rows read back are the lines given."""

from __future__ import annotations

from datetime import date, datetime, timezone
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from engine.billing.codec import pack
from engine.billing.model import BillLine, ChargeType, DocumentKind, Invoice, InvoiceState, TaxRate, Totals
from engine.billing.ports import StoredBill
from store.billing import SqlBillingUnitOfWorkFactory, _line_row, _lines_copy_text, billing_invoice_lines
from store.db import make_engine
from store.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
VAT = TaxRate("S", Fraction(20))
# text as operators' ids may hold it, COPY's escaped characters included; no NUL (neither database stores it in text)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
PLAIN = st.text("abcXYZ019_-.:", min_size=1, max_size=12)


def _line(line_id: str, subscriber: str, item: str, ref: str, advance: bool, start: date | None, amount: int) -> BillLine:
    return BillLine(line_id, ChargeType.USAGE, "d", amount, VAT, "standard", subscriber_id=subscriber, item_id=item,
                    period_start=start, advance=advance, ref_line_id=ref)


LINES = st.builds(_line, PLAIN, TEXT, TEXT, TEXT, st.booleans(), st.none() | st.dates(date(1990, 1, 1), date(2200, 1, 1)),
                  st.integers(-2**63, 2**63 - 1))
COUNTER = iter(range(10**9))


def _invoice(lines: list[BillLine], account: str) -> StoredBill:
    # line ids are a line's key within its invoice: made unique here
    lines = [BillLine(**{**ln.__dict__, "line_id": f"{ln.line_id}{n}"}) for n, ln in enumerate(lines)]
    inv = Invoice(f"inv_{next(COUNTER)}", "mno", account, DocumentKind.INVOICE, InvoiceState.DRAFT, "", "INV", date(2026, 11, 1),
                  date(2026, 12, 1), "EUR", None, None, Totals(0, 0, 0, 0, 0, 0, 0, 0), create_time=T0, lines=tuple(lines))
    return StoredBill(inv, pack({"lines": []}), None)


@pytest.fixture(scope="module")
def store(db_url: str):  # type: ignore[no-untyped-def]
    db = make_engine(db_url)
    yield SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(db))
    db.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bills=st.lists(st.tuples(st.lists(LINES, max_size=4), TEXT), min_size=1, max_size=3))
def test_lines_read_back_as_given(store, bills: list[tuple[list[BillLine], str]]) -> None:  # type: ignore[no-untyped-def]
    stored = [_invoice(lines, account) for lines, account in bills]
    with store() as uow:
        uow.add_invoices(stored)
        uow.commit()
    ids = [s.invoice.invoice_id for s in stored]
    t = billing_invoice_lines
    with store(read_only=True) as uow:
        got = sorted(tuple(r) for r in uow.s.execute(select(*t.columns).where(t.c.invoice_id.in_(ids))))
    want = sorted(_line_row(s.invoice, ln) for s in stored for ln in s.invoice.lines)
    assert got == want


def test_plain_lines_go_as_one_text_and_escaped_ones_row_by_row() -> None:
    plain = _invoice([_line("L", "sub_1", "TP_A", "", True, date(2026, 3, 1), -5), _line("M", "sub_1", "DST_EU", "L", False, None, 7)],
                     "ACC-1").invoice
    assert _lines_copy_text([plain]) == (f"{plain.invoice_id}\tL0\tmno\tACC-1\tsub_1\tusage\tTP_A\tt\t2026-03-01\t-5\t\n"
                                         f"{plain.invoice_id}\tM1\tmno\tACC-1\tsub_1\tusage\tDST_EU\tf\t\\N\t7\tL\n")
    for odd in ("a\tb", "a\nb", "a\\b", "a\rb", "\\N"):
        assert _lines_copy_text([_invoice([_line("L", "sub_1", odd, "", False, None, 1)], "ACC-1").invoice]) is None
        assert _lines_copy_text([_invoice([_line("L", "sub_1", "x", "", False, date(2026, 1, 1), 1)], odd).invoice]) is None
    assert _lines_copy_text([]) == ""
