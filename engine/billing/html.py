"""The human-readable bill: one self-contained HTML page (inline styles, no scripts, no remote resources),
printed to PDF by the server's printer.  Sections: who and when, the summary, charges by subscriber and
service, bundle use, discounts, taxes, and the call detail (every CDR of the bill)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from html import escape
from zoneinfo import ZoneInfo

from engine.billing.labels import word
from engine.billing.model import Bill, ChargeType, DocumentKind
from engine.billing.profile import BillingProfile
from engine.billing.ubl import percent_text
from engine.currencies import minor_units
from engine.money import format_micros

STYLE = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;font-size:10pt;color:#1d2530;margin:24px}
h1{font-size:18pt;margin:0 0 4px}h2{font-size:12pt;border-bottom:2px solid #2b6cb0;padding-bottom:2px;margin:18px 0 6px}
h3{font-size:10.5pt;margin:10px 0 4px}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.n,th.n{text-align:right;white-space:nowrap}
tr.total td{font-weight:700;border-top:1px solid #4a5568}.muted{color:#5a6473}
.head{display:flex;justify-content:space-between}.box{width:48%}.due{font-size:14pt;font-weight:700;color:#2b6cb0}
.detail td,.detail th{font-size:8pt;padding:1px 4px}.preview{color:#c53030;font-weight:700}
"""
MAX_DETAIL_ROWS = 5000


def _money(micros: int, currency: str) -> str:
    return f"{format_micros(micros, minor_units(currency))} {currency}"


def render_html(bill: Bill, number: str, profile: BillingProfile, kind: DocumentKind = DocumentKind.INVOICE,
                reference: str = "", reason: str = "", preview: bool = False) -> str:
    lang = bill.account.language
    cur = bill.currency
    a = bill.account
    s = profile.seller
    t = bill.totals
    title = word("credit_note" if kind is DocumentKind.CREDIT_NOTE else "invoice", lang)
    out: list[str] = [f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">',
                      f"<title>{escape(title)} {escape(number)}</title><style>{STYLE}</style></head><body>"]
    if preview:
        out.append(f'<p class="preview">{escape(word("preview", lang))}</p>')
    out.append('<div class="head"><div class="box">')
    out.append(f"<h1>{escape(s.name)}</h1><div>{'<br>'.join(escape(x) for x in s.address.lines)}<br>"
               f"{escape(s.address.postal_code)} {escape(s.address.city)} {escape(s.address.country)}</div>")
    out.append(f'<div class="muted">{escape(word("vat_id", lang))}: {escape(s.vat_id)}</div></div><div class="box">')
    addr = a.address
    out.append(f"<h3>{escape(a.name)}</h3>")
    if addr is not None:
        out.append(f"<div>{'<br>'.join(escape(x) for x in addr.lines)}<br>{escape(addr.postal_code)} {escape(addr.city)} "
                   f"{escape(addr.country)}</div>")
    if a.vat_id:
        out.append(f'<div class="muted">{escape(word("vat_id", lang))}: {escape(a.vat_id)}</div>')
    out.append("</div></div>")
    p = bill.period
    out.append(f"<h2>{escape(title)} {escape(number)}</h2><table>")
    rows = [(word("account", lang), a.account_id),
            (word("period", lang), f"{p.start.isoformat()} - {(p.end - timedelta(days=1)).isoformat()}"),
            (word("issue_date", lang), bill.issue_date.isoformat())]
    if kind is DocumentKind.INVOICE:
        rows.append((word("due_date", lang), bill.due_date.isoformat()))
    if reference:
        rows.append((word("credits_invoice", lang), f"{reference}: {reason}"))
    out.extend(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    out.append("</table>")

    # summary by kind of charge
    by_kind: dict[str, int] = defaultdict(int)
    for ln in bill.lines:
        key = {"usage": "usage", "fee": "fees", "bundle_fee": "fees", "one_off": "one_off", "commitment": "fees"}[ln.charge_type.value]
        by_kind[key] += ln.amount_micros
    discounts = sum(x.amount_micros for x in bill.adjustments if not x.charge)
    commitments = sum(x.amount_micros for x in bill.adjustments if x.charge)
    out.append(f"<h2>{escape(word('summary', lang))}</h2><table>")
    for key in ("fees", "usage", "one_off"):
        if key in by_kind:
            out.append(f'<tr><td>{escape(word(key, lang))}</td><td class="n">{_money(by_kind[key], cur)}</td></tr>')
    if commitments:
        out.append(f'<tr><td>{escape(word("commitment", lang))}</td><td class="n">{_money(commitments, cur)}</td></tr>')
    if discounts:
        out.append(f'<tr><td>{escape(word("discounts", lang))}</td><td class="n">-{_money(discounts, cur)}</td></tr>')
    out.append(f'<tr class="total"><td>{escape(word("net_total", lang))}</td><td class="n">{_money(t.tax_exclusive, cur)}</td></tr>')
    out.append(f'<tr><td>{escape(word("tax_total", lang))}</td><td class="n">{_money(t.tax, cur)}</td></tr>')
    out.append(f'<tr class="total"><td>{escape(word("gross_total", lang))}</td><td class="n">{_money(t.tax_inclusive, cur)}</td></tr>')
    if t.prepaid:
        out.append(f'<tr><td>{escape(word("prepaid", lang))}</td><td class="n">-{_money(t.prepaid, cur)}</td></tr>')
    out.append(f'</table><p class="due">{escape(word("payable", lang))}: {_money(t.payable, cur)}</p>')

    # charges by subscriber
    out.append(f"<h2>{escape(word('charges', lang))}</h2>")
    by_sub: dict[str, list] = defaultdict(list)
    for ln in bill.lines:
        by_sub[ln.msisdn].append(ln)
    for msisdn in sorted(by_sub):
        out.append(f"<h3>{escape('+' + msisdn if msisdn else word('account', lang))}</h3><table>")
        for ln in by_sub[msisdn]:
            when = ""
            if ln.period_start and ln.period_end:
                when = f"{ln.period_start.isoformat()} - {(ln.period_end - timedelta(days=1)).isoformat()}"
            qty = f"{ln.quantity} CDRs" if ln.charge_type is ChargeType.USAGE else (f"{ln.quantity} {word('days', lang)}"
                                                                                   if ln.charge_type in (ChargeType.FEE, ChargeType.BUNDLE_FEE) else "")
            out.append(f'<tr><td>{escape(ln.description)}</td><td class="muted">{escape(when)}</td><td class="n">{escape(qty)}</td>'
                       f'<td class="n">{_money(ln.amount_micros, cur)}</td><td class="n muted">{percent_text(ln.tax.percent)} %</td></tr>')
        out.append("</table>")
    if bill.bundles:
        out.append(f"<h2>{escape(word('bundles', lang))}</h2><table><tr><th>MSISDN</th><th>Bundle</th><th class='n'>Used</th>"
                   "<th class='n'>Allowance</th></tr>")
        for b in bill.bundles:
            out.append(f"<tr><td>+{escape(b.msisdn)}</td><td>{escape(b.name)}</td><td class='n'>{_units(b.used, b.unit)}</td>"
                       f"<td class='n'>{_units(b.allowance, b.unit)}</td></tr>")
        out.append("</table>")
    if bill.adjustments:
        out.append(f"<h2>{escape(word('discounts', lang))}</h2><table>")
        for x in bill.adjustments:
            sign = "" if x.charge else "-"
            out.append(f"<tr><td>{escape(x.reason)}</td><td class='muted'>{escape(x.discount_plan)}</td>"
                       f"<td class='n'>{sign}{_money(x.amount_micros, cur)}</td></tr>")
        out.append("</table>")
    out.append(f"<h2>{escape(word('taxes', lang))}</h2><table><tr><th>VAT</th><th class='n'>Base</th><th class='n'>Tax</th></tr>")
    for sub in bill.taxes:
        label = f"{sub.tax.code} {percent_text(sub.tax.percent)} %" + (f" ({sub.tax.exemption_reason})" if sub.tax.exemption_reason else "")
        out.append(f"<tr><td>{escape(label)}</td><td class='n'>{_money(sub.taxable_micros, cur)}</td>"
                   f"<td class='n'>{_money(sub.tax_micros, cur)}</td></tr>")
    out.append("</table>")
    if bill.usage:
        tz = ZoneInfo(a.time_zone)
        out.append(f"<h2>{escape(word('call_detail', lang))}</h2><table class='detail'><tr><th>Time</th><th>MSISDN</th><th>Service</th>"
                   "<th>Destination</th><th class='n'>Units</th><th class='n'>Charge</th></tr>")
        for u in bill.usage[:MAX_DETAIL_ROWS]:
            out.append(f"<tr><td>{u.start_time.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S')}</td><td>+{escape(u.msisdn)}</td>"
                       f"<td>{escape(u.service)}</td><td>{escape(u.destination or '-')}</td><td class='n'>{u.units or ''}</td>"
                       f"<td class='n'>{format_micros(u.charge_micros, 6).rstrip('0').rstrip('.') or '0'}</td></tr>")
        if len(bill.usage) > MAX_DETAIL_ROWS:
            out.append(f"<tr><td colspan='6'>... {len(bill.usage) - MAX_DETAIL_ROWS} more in the e-invoice's usage.csv</td></tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


def _units(value: int, unit: str) -> str:
    if unit == "second":
        return f"{value // 60} min"
    if unit == "byte":
        return f"{value / 1024 ** 2:.0f} MB" if value < 1024 ** 3 else f"{value / 1024 ** 3:.1f} GB"
    return str(value)
