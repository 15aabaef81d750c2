"""A bill line's entry in the stored bill's JSON, written from the parts its shape fixes.

A bill run stores ~10 lines per invoice.  Most of a line is the same on every bill of a run: its kind, name, VAT
rate, item, service, destination, plan and period.  Those parts are written as JSON once per such line shape
(``forms_of``, kept by the rate's identity as the other texts made from a rate are) and each line adds only what is
its own: its id, amount, subscriber, number, quantity and exact sum.  A line finds its shape once: it is kept in the
line's own dict (not a field: equality, ``replace`` and ``asdict`` ignore it).

``line_json`` gives exactly the text ``json.dumps(line_dict(line), separators=(",", ":"))`` gives (the stored bills
do not change: tests/unit/billing/test_lineforms.py compares them over arbitrary lines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from json.encoder import encode_basestring_ascii as _js   # what json.dumps writes a str as (ensure_ascii)
from typing import Any

from engine.billing.model import BillLine, TaxRate
from engine.billing.taxes import RateMemo


def tax_dict(t: TaxRate) -> dict[str, Any]:
    return {"code": t.code, "percent": [t.percent.numerator, t.percent.denominator], "exemption_code": t.exemption_code,
            "exemption_reason": t.exemption_reason}


# the bills of a run share a few rates: each one's dict built once and shared by the lines' dicts, which the JSON
# encoder only reads (line_dict, codec.adjustment_dict)
_shared_tax_dict: RateMemo[tuple[()], dict[str, Any]] = RateMemo(lambda t, _key: tax_dict(t), 256)


def shared_tax_dict(t: TaxRate) -> dict[str, Any]:
    return _shared_tax_dict(t, ())


def line_dict(ln: BillLine) -> dict[str, Any]:
    exact = ln.exact_micros
    return {
        "line_id": ln.line_id, "charge_type": ln.charge_type._value_, "description": ln.description, "amount": ln.amount_micros,
        "tax": shared_tax_dict(ln.tax), "tax_category": ln.tax_category, "subscriber_id": ln.subscriber_id, "msisdn": ln.msisdn,
        "item_id": ln.item_id, "service": ln.service, "destination": ln.destination, "tariff_plan": ln.tariff_plan,
        "period_start": ln.period_start.isoformat() if ln.period_start else None,
        "period_end": ln.period_end.isoformat() if ln.period_end else None, "quantity": ln.quantity,
        "exact": [exact.numerator, exact.denominator] if isinstance(exact, Fraction) else [int(exact), 1], "advance": ln.advance,
        "ref_line_id": ln.ref_line_id,
    }


@dataclass(frozen=True)
class LineForms:
    """The parts of a line's JSON that its shape fixes."""

    json_a: str            # from the charge type to the amount's key
    json_b: str            # from the tax to the subscriber's key
    json_c: str            # from the item to the quantity's key
    json_d: str            # from the advance flag to the end


_Key = tuple[str, str, str, str, str, str, str, Any, Any, bool, str]


def _new_forms(tax: TaxRate, key: _Key) -> LineForms:
    kind, description, tax_category, item_id, service, destination, tariff_plan, start, end, advance, ref_line_id = key
    return LineForms(
        f',"charge_type":{_js(kind)},"description":{_js(description)},"amount":',
        f',"tax":{json.dumps(tax_dict(tax), separators=(",", ":"))},"tax_category":{_js(tax_category)},"subscriber_id":',
        f',"item_id":{_js(item_id)},"service":{_js(service)},"destination":{_js(destination)},"tariff_plan":{_js(tariff_plan)},'
        f'"period_start":{_js(start.isoformat()) if start else "null"},"period_end":{_js(end.isoformat()) if end else "null"},'
        f'"quantity":',
        f',"advance":{json.dumps(advance)},"ref_line_id":{_js(ref_line_id)}}}',
    )


_shapes: RateMemo[_Key, LineForms] = RateMemo(_new_forms)


def forms_of(line: BillLine) -> LineForms:
    """The shape of ``line``'s JSON: found once per line and kept in its own dict."""
    found: LineForms | None = line.__dict__.get("_forms")
    if found is None:
        found = line.__dict__["_forms"] = _shapes(
            line.tax, (line.charge_type._value_, line.description, line.tax_category, line.item_id, line.service, line.destination,
                       line.tariff_plan, line.period_start, line.period_end, line.advance, line.ref_line_id))
    return found


def _number(value: Any) -> str:
    return str(value) if type(value) is int else json.dumps(value)   # another type: what the encoder writes of it


def line_json(line: BillLine) -> str:
    """The line as the stored bill's JSON writes it (``line_dict``, compact separators)."""
    exact = line.exact_micros
    exact_text = f"[{exact.numerator},{exact.denominator}]" if isinstance(exact, Fraction) else f"[{int(exact)},1]"
    f = forms_of(line)
    return (f'{{"line_id":{_js(line.line_id)}{f.json_a}{_number(line.amount_micros)}{f.json_b}{_js(line.subscriber_id)},'
            f'"msisdn":{_js(line.msisdn)}{f.json_c}{_number(line.quantity)},"exact":{exact_text}{f.json_d}')
