"""A bill line's JSON written from its shape (engine.billing.lineforms) is the text the general writer gives: the
stored bill's JSON as json.dumps of line_dict / bill_dict, for any line and any bill of them."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing.codec import bill_dict, bill_json, line_dict, pack, pack_bill
from engine.billing.lineforms import forms_of, line_json
from engine.billing.model import BillLine, ChargeType, TaxRate
from engine.billing.ubl import Document, render_ubl
from tests.unit.billing import factories as f

_text = st.text(max_size=12)                 # any characters: quotes, backslashes, controls, non-ASCII
_rates = [TaxRate("S", Fraction(1, 5)), TaxRate("E", Fraction(0), "VATEX-EU-132", 'exempt "medical" \\ services'),
          TaxRate("S", Fraction(2101, 100))]
_day = st.none() | st.dates(date(2020, 1, 1), date(2030, 1, 1))


@st.composite
def lines(draw: st.DrawFn) -> BillLine:
    exact = draw(st.integers(-10**15, 10**15) | st.fractions().map(lambda x: x if x.denominator != 1 else x + Fraction(1, 3)))
    return BillLine(draw(_text), draw(st.sampled_from(list(ChargeType))), draw(_text), draw(st.integers(-10**12, 10**12)),
                    draw(st.sampled_from(_rates)), draw(_text), draw(_text), draw(_text), draw(_text), draw(_text), draw(_text),
                    draw(_text), draw(_day), draw(_day), draw(st.integers(-5, 10**6)), exact, draw(st.booleans()), draw(_text))


@settings(max_examples=400, deadline=None)
@given(lines())
def test_a_line_written_from_its_shape_is_what_the_json_encoder_writes(line: BillLine) -> None:
    assert line_json(line) == json.dumps(line_dict(line), separators=(",", ":"))


@settings(max_examples=100, deadline=None)
@given(st.lists(lines(), min_size=0, max_size=4), st.booleans())
def test_a_stored_bill_written_from_its_lines_shapes_is_the_same_bytes(some: list[BillLine], with_usage: bool) -> None:
    bill = _bill()
    from dataclasses import replace

    bill = replace(bill, lines=tuple(some))
    assert bill_json(bill, with_usage) == json.dumps(bill_dict(bill, with_usage), separators=(",", ":"))
    assert pack_bill(bill, with_usage) == pack(bill_dict(bill, with_usage))


def test_lines_of_one_shape_share_its_parts_and_each_keeps_its_own_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bill = _bill(tmp_path)
    usage = [ln for ln in bill.lines if ln.charge_type is ChargeType.USAGE]
    assert usage, "the sample bill has usage lines"
    from dataclasses import replace

    other = replace(usage[0], line_id="99", amount_micros=usage[0].amount_micros + 10_000, msisdn="33699999999", quantity=7)
    assert forms_of(other) is forms_of(usage[0]), "one shape, its parts made once"
    assert other == replace(other) and "_forms" not in replace(other).__dict__, "not a field: equality and replace ignore it"
    doc = render_ubl(Document(_kind(), "INV-1", bill.issue_date, bill.due_date, bill.currency, bill.period.start,
                              bill.period.end, bill.account, f.profile(), (other,), (), bill.taxes, bill.totals)).decode()
    assert "<cbc:ID>99</cbc:ID>" in doc and "+33699999999, 7 CDRs" in doc
    assert json.loads(line_json(other))["amount"] == other.amount_micros


def _kind():  # type: ignore[no-untyped-def]
    from engine.billing.model import DocumentKind

    return DocumentKind.INVOICE


_made: list[object] = []


def _bill(tmp=None):  # type: ignore[no-untyped-def]
    """A computed bill of the sample catalogue with fees and usage (made once)."""
    if _made:
        return _made[0]
    import tempfile
    from pathlib import Path

    from engine.billing.compute import BillInputs, compute_bill
    from engine.billing.timeline import period_for_cycle_date

    cat = f.catalogue(Path(tmp or tempfile.mkdtemp()))
    account = f.account()
    period = period_for_cycle_date(account, date(2026, 4, 1))
    assert period is not None
    inputs = BillInputs(account, period, (f.service(),), tuple(f.usage(5)))
    bill = compute_bill(inputs, cat, f.profile(), period.end)
    _made.append(bill)
    return bill
