"""``kind: tax_table`` — the VAT of one country (TAX_...), read by the bill run.

::

    id: TAX_FR
    country: FR                       # ISO 3166-1 alpha-2: the buyer's country (place of supply)
    categories:                       # the names plans use in ``tax_category``
      standard: {code: S, percent: "20"}
      press: {code: S, percent: "2.1"}
      exempt_health: {code: E, percent: "0", exemption_code: VATEX-EU-132, reason: "Exempt under Article 132"}
    exemptions:                       # named on an account: every line of its bills goes to this category
      reverse_charge: {code: AE, exemption_code: VATEX-EU-AE, reason: "Reverse charge", buyer_vat_id: true}

``code`` is a UNCL 5305 duty category code (S, Z, E, AE, K, G, O, L, M).
Exempt codes (E, AE, K, G, O) need an exemption reason code or text, as
EN 16931 requires, and carry 0 %; a standard (S) rate is above 0 %.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from engine.money import AmountError, parse_percent
from engine.plans.kinds.common import TAX_CATEGORY, Ctx
from engine.plans.model import EXEMPT_CODES, TAX_CODES, TaxCategory, TaxExemption, TaxTable
from engine.yamlio import Fields, Mark, MarkedMap

COUNTRY = re.compile(r"^[A-Z]{2}$")
VATEX = re.compile(r"^VATEX-[A-Z0-9-]{1,40}$")


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> TaxTable:
    f = Fields(node, "tax_table", ctx.problems)
    f.optional("kind", str)
    tid = ctx.ident(f, "tax_table")
    name = f.optional("name", str, default=tid)
    f.optional("description", str)
    country = f.required("country", str) or ""
    if country and not COUNTRY.match(country):
        ctx.problem(node.mark_of("country"), "value.country", f"{tid}.country: {country!r} is not an ISO 3166-1 alpha-2 code such as FR")
    raw_categories = f.required("categories", dict) or MarkedMap()
    raw_exemptions = f.optional("exemptions", dict, default=MarkedMap()) or MarkedMap()
    f.done()
    categories: dict[str, TaxCategory] = {}
    for key, item in raw_categories.items():
        c = _category(str(key), item, ctx, tid, raw_categories.mark_of(key))
        if c is not None:
            categories[c.name] = c
    exemptions: dict[str, TaxExemption] = {}
    for key, item in raw_exemptions.items():
        e = _exemption(str(key), item, ctx, tid, raw_exemptions.mark_of(key))
        if e is not None:
            exemptions[e.name] = e
    if not categories and "categories" in node:
        ctx.problem(node.mark_of("categories"), "taxes.no-categories", f"{tid}: a tax table needs at least one category")
    return TaxTable(tid, name, country, categories, exemptions, node.mark)


def _name(key: str, ctx: Ctx, tid: str, mark: Mark) -> bool:
    if not TAX_CATEGORY.match(key):
        ctx.problem(mark, "id.format", f"{tid}: {key!r} must be lower case letters, digits and '_'")
        return False
    return True


def _code_and_reason(f: Fields, ctx: Ctx, what: str) -> tuple[str, str, str]:
    code = f.required("code", str) or ""
    if code and code not in TAX_CODES:
        ctx.problem(f.node.mark_of("code"), "value.enum", f"{what}.code: {code!r} is not one of: {', '.join(TAX_CODES)}")
        code = ""
    vatex = f.optional("exemption_code", str, default="")
    reason = f.optional("reason", str, default="")
    if vatex and not VATEX.match(vatex):
        ctx.problem(f.node.mark_of("exemption_code"), "value.format", f"{what}.exemption_code: {vatex!r} is not a VATEX code such as VATEX-EU-AE")
    if code in EXEMPT_CODES and not (vatex or reason):
        ctx.problem(f.mark, "taxes.exemption-reason", f"{what}: category {code} needs an exemption_code or a reason (EN 16931)")
    if code and code not in EXEMPT_CODES and (vatex or reason):
        ctx.problem(f.mark, "taxes.exemption-reason", f"{what}: only exempt categories ({', '.join(EXEMPT_CODES)}) carry an exemption reason")
    return code, vatex, reason


def _category(key: str, item: object, ctx: Ctx, tid: str, mark: Mark) -> TaxCategory | None:
    what = f"{tid}.categories.{key}"
    f = Fields(item, what, ctx.problems, fallback=mark)
    if not f.ok or not _name(key, ctx, tid, mark):
        return None
    code, vatex, reason = _code_and_reason(f, ctx, what)
    raw = f.required("percent", (str, int))
    f.done()
    percent = Fraction(0)
    if raw is not None:
        try:
            percent = parse_percent(raw)
        except AmountError as exc:
            ctx.problem(f.node.mark_of("percent"), "value.amount", f"{what}.percent: {exc}")
            return None
        if not 0 <= percent < 1:
            ctx.problem(f.node.mark_of("percent"), "value.range", f"{what}.percent: a VAT rate is at least 0 and below 100")
            return None
    if not code or raw is None:
        return None
    if code in EXEMPT_CODES + ("Z",) and percent != 0:
        ctx.problem(f.node.mark_of("percent"), "taxes.rate", f"{what}: category {code} is taxed at 0 %")
        return None
    if code == "S" and percent == 0:
        ctx.problem(f.node.mark_of("percent"), "taxes.rate", f"{what}: a standard (S) rate is above 0 %; use Z for zero rated")
        return None
    return TaxCategory(key, code, percent, vatex, reason, f.mark)


def _exemption(key: str, item: object, ctx: Ctx, tid: str, mark: Mark) -> TaxExemption | None:
    what = f"{tid}.exemptions.{key}"
    f = Fields(item, what, ctx.problems, fallback=mark)
    if not f.ok or not _name(key, ctx, tid, mark):
        return None
    code, vatex, reason = _code_and_reason(f, ctx, what)
    buyer_vat = f.optional("buyer_vat_id", bool, default=code in ("AE", "K"))
    f.done()
    if code and code not in EXEMPT_CODES + ("Z",):
        ctx.problem(f.node.mark_of("code"), "taxes.exemption-code", f"{what}: an exemption moves lines to an exempt or zero category, not {code}")
        return None
    if not code:
        return None
    return TaxExemption(key, code, vatex, reason, bool(buyer_vat), f.mark)
