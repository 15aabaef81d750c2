"""A bill line's text in what carries it: the UBL ``InvoiceLine`` and the stored bill's JSON, from one set of parts.

A bill run writes every line twice as text (its document, its stored bill), ~10 lines per invoice.  Most of a line
is the same on every bill of a run: its kind, name, VAT rate, item, service, destination, plan and period.  Those
parts are written once per such line shape (``forms_of``, kept by the rate's identity as the other texts made from
a rate are) and each line adds only what is its own: its id, amount, subscriber, number, quantity and exact sum.
A line finds its shape once (``BillLine.forms``), whichever text asks first.

``line_json`` gives exactly the bytes ``json.dumps(codec.line_dict(line), separators=(",", ":"))`` gives (the
stored bills' text does not change: tests/unit/billing/test_lineforms.py compares them over arbitrary lines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from json.encoder import encode_basestring_ascii as _js   # what json.dumps writes a str as (ensure_ascii)
from typing import TYPE_CHECKING, Any

from engine.billing.taxes import RateMemo
from engine.billing.ubl import line_item, line_period

if TYPE_CHECKING:
    from engine.billing.model import BillLine, TaxRate


@dataclass(frozen=True)
class LineForms:
    """The parts of a line's texts that its shape fixes."""

    kind: str              # the charge type's value
    json_a: str            # from the charge type to the amount's key
    json_b: str            # from the tax to the subscriber's key
    json_c: str            # from the item to the quantity's key
    json_d: str            # from the advance flag to the end
    ubl_period: str        # the line's InvoicePeriod, or ""
    ubl_item: str          # the Item from its Name on (closed)


_Key = tuple[str, str, str, str, str, str, str, Any, Any, bool, str]


def _new_forms(tax: TaxRate, key: _Key) -> LineForms:
    from engine.billing.codec import tax_dict   # (the codec writes bills with line_json: imported once it is loaded)

    kind, description, tax_category, item_id, service, destination, tariff_plan, start, end, advance, ref_line_id = key
    return LineForms(
        kind,
        f',"charge_type":{_js(kind)},"description":{_js(description)},"amount":',
        f',"tax":{json.dumps(tax_dict(tax), separators=(",", ":"))},"tax_category":{_js(tax_category)},"subscriber_id":',
        f',"item_id":{_js(item_id)},"service":{_js(service)},"destination":{_js(destination)},"tariff_plan":{_js(tariff_plan)},'
        f'"period_start":{_js(start.isoformat()) if start else "null"},"period_end":{_js(end.isoformat()) if end else "null"},'
        f'"quantity":',
        f',"advance":{"true" if advance else "false"},"ref_line_id":{_js(ref_line_id)}}}',
        line_period(start, end),
        line_item(tax, (description, item_id, kind)),
    )


_shapes: RateMemo[_Key, LineForms] = RateMemo(_new_forms)


def forms_of(line: BillLine) -> LineForms:
    """The shape of ``line``'s texts (use ``line.forms``: found once per line)."""
    return _shapes(line.tax, (line.charge_type._value_, line.description, line.tax_category, line.item_id, line.service,
                              line.destination, line.tariff_plan, line.period_start, line.period_end, line.advance, line.ref_line_id))


def line_json(line: BillLine) -> str:
    """The line as the stored bill's JSON writes it (``codec.line_dict``, compact separators)."""
    amount, quantity, exact = line.amount_micros, line.quantity, line.exact_micros
    if type(exact) is Fraction:
        exact_text = f"[{exact.numerator},{exact.denominator}]"
    elif type(exact) is int:
        exact_text = f"[{exact},1]"
    else:
        exact_text = ""
    if type(amount) is not int or type(quantity) is not int or not exact_text or type(line.description) is not str:
        from engine.billing.codec import line_dict   # a value of another type: what the encoder makes of it

        return json.dumps(line_dict(line), separators=(",", ":"))
    f = line.forms
    return (f'{{"line_id":{_js(line.line_id)}{f.json_a}{amount}{f.json_b}{_js(line.subscriber_id)},"msisdn":{_js(line.msisdn)}'
            f'{f.json_c}{quantity},"exact":{exact_text}{f.json_d}')
