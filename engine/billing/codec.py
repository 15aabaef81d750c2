"""A bill as plain JSON data (stored beside each invoice, read back to render, credit and re-bill it)."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from isal import isal_zlib

from engine.billing.model import (
    Account,
    AccountStatus,
    Address,
    Adjustment,
    Bill,
    BillLine,
    BillPeriod,
    BundleUse,
    ChargeType,
    Delivery,
    RatedUsage,
    TaxRate,
    TaxSubtotal,
    Totals,
)
from engine.billing.lineforms import line_dict, line_json, shared_tax_dict as _tax_dict, tax_dict
from engine.billing.ports import StoredBill
from engine.billing.ubl import usage_from_document


def _d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def tax_from(d: dict[str, Any]) -> TaxRate:
    return TaxRate(d["code"], Fraction(*d["percent"]), d["exemption_code"], d["exemption_reason"])


def line_from(d: dict[str, Any]) -> BillLine:
    return BillLine(d["line_id"], ChargeType(d["charge_type"]), d["description"], d["amount"], tax_from(d["tax"]), d["tax_category"],
                    d["subscriber_id"], d["msisdn"], d["item_id"], d["service"], d["destination"], d["tariff_plan"],
                    _d(d["period_start"]), _d(d["period_end"]), d["quantity"], Fraction(*d["exact"]), d["advance"],
                    d.get("ref_line_id", ""))


def adjustment_dict(a: Adjustment) -> dict[str, Any]:
    return {"id": a.adjustment_id, "charge": a.charge, "reason": a.reason, "discount_plan": a.discount_plan, "amount": a.amount_micros,
            "tax": _tax_dict(a.tax), "tax_category": a.tax_category, "subscriber_id": a.subscriber_id}


def adjustment_from(d: dict[str, Any]) -> Adjustment:
    return Adjustment(d["id"], d["charge"], d["reason"], d["discount_plan"], d["amount"], tax_from(d["tax"]), d["tax_category"],
                      d["subscriber_id"])


def account_dict(a: Account) -> dict[str, Any]:
    addr = a.address
    return {
        "tenant_id": a.tenant_id, "account_id": a.account_id, "name": a.name,
        "address": None if addr is None else {"lines": list(addr.lines), "city": addr.city, "postal_code": addr.postal_code,
                                               "country": addr.country, "region": addr.region},
        "currency": a.currency, "anchor_day": a.anchor_day, "time_zone": a.time_zone, "language": a.language,
        "delivery": a.delivery.value, "email": a.email, "vat_id": a.vat_id, "company_id": a.company_id,
        "payment_terms_days": a.payment_terms_days, "tax_exemption": a.tax_exemption, "discount_plans": list(a.discount_plans),
        "buyer_reference": a.buyer_reference, "status": a.status.value,
        **{k: (v.isoformat() if v else None) for k, v in (("create_time", a.create_time), ("update_time", a.update_time),
                                                          ("close_time", a.close_time))},
    }


def account_from(d: dict[str, Any]) -> Account:
    addr = d.get("address")
    times = {k: datetime.fromisoformat(d[k]) if d.get(k) else None for k in ("create_time", "update_time", "close_time")}
    return Account(
        d["tenant_id"], d["account_id"], d["name"],
        None if addr is None else Address(tuple(addr["lines"]), addr["city"], addr["postal_code"], addr["country"], addr.get("region", "")),
        d["currency"], d["anchor_day"], d["time_zone"], d["language"], Delivery(d["delivery"]), d["email"], d["vat_id"],
        d["company_id"], d["payment_terms_days"], d["tax_exemption"], tuple(d["discount_plans"]), d.get("buyer_reference", ""),
        AccountStatus(d["status"]), **times,
    )


def usage_dict(u: RatedUsage) -> list[Any]:
    return [u.cdr_id, u.msisdn, u.start_time.isoformat(), u.service, u.destination, u.charge_micros, u.currency, u.tariff_plan,
            u.plan_set_version, u.units]


def usage_from(r: list[Any]) -> RatedUsage:
    return RatedUsage(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9])


def bill_dict(b: Bill, with_usage: bool = True) -> dict[str, Any]:
    return {**_bill_head(b), "lines": [line_dict(ln) for ln in b.lines], **_bill_tail(b, with_usage)}


def _bill_head(b: Bill) -> dict[str, Any]:
    """A bill's keys before its lines."""
    p = b.period
    return {
        "tenant_id": b.tenant_id, "account": account_dict(b.account),
        "period": {"start": p.start.isoformat(), "end": p.end.isoformat(), "cycle_start": p.cycle_start.isoformat(),
                   "cycle_end": p.cycle_end.isoformat(), "next_end": p.next_end.isoformat(), "final": p.final},
        "currency": b.currency, "issue_date": b.issue_date.isoformat(), "due_date": b.due_date.isoformat(),
    }


def _bill_tail(b: Bill, with_usage: bool) -> dict[str, Any]:
    """A bill's keys after its lines."""
    return {
        "adjustments": [adjustment_dict(a) for a in b.adjustments],
        "taxes": [{"tax": tax_dict(t.tax), "taxable": t.taxable_micros, "amount": t.tax_micros} for t in b.taxes],
        "totals": {"line_extension": b.totals.line_extension, "allowances": b.totals.allowances, "charges": b.totals.charges,
                   "tax_exclusive": b.totals.tax_exclusive, "tax": b.totals.tax, "tax_inclusive": b.totals.tax_inclusive,
                   "prepaid": b.totals.prepaid, "payable": b.totals.payable}, "one_off_ids": list(b.one_off_ids), "payments": [list(p) for p in b.payments],
        "bundles": [asdict(x) for x in b.bundles], "plan_set_version": b.plan_set_version, "notes": list(b.notes),
        "usage": [usage_dict(u) for u in b.usage] if with_usage else None,
        "usage_line_ids": list(b.usage_line_ids) if with_usage else None,
    }


# json.dumps(x, separators=(",", ":")) builds an encoder for every call (keyword arguments other than the defaults):
# one encoder with the same settings, made once, writes the same text (twice per issued invoice)
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def bill_json(b: Bill, with_usage: bool = True) -> str:
    """``json.dumps(bill_dict(b, with_usage), separators=(",", ":"))``, the same text, its lines written from their
    shapes (engine.billing.lineforms) rather than a dict each encoded again."""
    head = _COMPACT(_bill_head(b))
    tail = _COMPACT(_bill_tail(b, with_usage))
    return f'{head[:-1]},"lines":[{",".join(map(line_json, b.lines))}],{tail[1:]}'


def bill_from(d: dict[str, Any], usage: tuple[RatedUsage, ...] | None = None, usage_line_ids: tuple[str, ...] | None = None) -> Bill:
    p = d["period"]
    period = BillPeriod(date.fromisoformat(p["start"]), date.fromisoformat(p["end"]), date.fromisoformat(p["cycle_start"]),
                        date.fromisoformat(p["cycle_end"]), date.fromisoformat(p["next_end"]), p["final"])
    if usage is None:
        usage = tuple(usage_from(r) for r in d.get("usage") or [])
        usage_line_ids = tuple(d.get("usage_line_ids") or [])
    return Bill(
        d["tenant_id"], account_from(d["account"]), period, d["currency"], date.fromisoformat(d["issue_date"]),
        date.fromisoformat(d["due_date"]), tuple(line_from(x) for x in d["lines"]), tuple(adjustment_from(x) for x in d["adjustments"]),
        tuple(TaxSubtotal(tax_from(t["tax"]), t["taxable"], t["amount"]) for t in d["taxes"]), Totals(**d["totals"]), usage,
        tuple(d["one_off_ids"]), tuple((s, int(m)) for s, m in d["payments"]), tuple(BundleUse(**x) for x in d["bundles"]),
        d["plan_set_version"], tuple(d["notes"]), tuple(usage_line_ids or ()),
    )


def compress(data: bytes) -> bytes:
    """A stored bill or document, zlib-compressed (any zlib reads it back).

    ISA-L's deflate at its level 1: a bill run compresses every issued document (~40 kB of UBL, most of it the base64
    usage attachment); the standard library's level 1 took ~0.5 ms a document, a quarter of the run's Python time per
    invoice, ISA-L ~0.1 ms for a slightly smaller result."""
    return isal_zlib.compress(data, 1)


def pack(data: dict[str, Any]) -> bytes:
    # keys in the order the dicts above build them (fixed, so the text is as stable as sorted): sorting every dict's
    # keys doubled the encoder's time, paid once per issued invoice
    return compress(_COMPACT(data).encode("utf-8"))


def pack_bill(b: Bill, with_usage: bool = True) -> bytes:
    """``pack(bill_dict(b, with_usage))``: the same bytes (a bill run stores one per invoice)."""
    return compress(bill_json(b, with_usage).encode("utf-8"))


def unpack(blob: bytes) -> dict[str, Any]:
    return json.loads(zlib.decompress(blob))


def bill_of(stored: StoredBill) -> Bill:
    """The bill a stored invoice was made from (an issued one keeps its CDRs only in its document's usage.csv)."""
    data = unpack(stored.bill)
    if stored.document is not None and data.get("usage") is None:
        usage, line_ids = usage_from_document(stored.document)
        return bill_from(data, usage, line_ids)
    return bill_from(data)
