"""The reference rater: a slow, literal reading of the plan IR, kept only as the oracle of differential tests.

It shares nothing with the product's evaluator (engine.rating.evaluator) but
the IR and the condition language: bands come from walking the call minute by
minute through ``zoneinfo``, prefixes from trying every length, money from
``Fraction`` and ``Decimal``.  It is slow on purpose and never called by
product code.  It answers ``RatedCdr.as_dict()`` form plus the bundle counters
left, so tests compare the two whole.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from engine.cdr import MediatedCdr
from engine.conditions import condition_from_plain

MICRO = Decimal(1_000_000)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _round(amount: Fraction, mode: str, decimals: int) -> int:
    """Exact micros rounded to ``decimals`` places, via Decimal (independent of engine.money)."""
    with localcontext() as ctx:
        ctx.prec = 80
        value = Decimal(amount.numerator) / Decimal(amount.denominator) / MICRO
        positive = amount >= 0
        rounding = {"up": ROUND_CEILING if positive else ROUND_FLOOR, "down": ROUND_DOWN, "half_up": ROUND_HALF_UP,
                    "half_even": ROUND_HALF_EVEN}[mode]
        q = value.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
        return int(q * MICRO)


def _money(micros: int, currency_digits: int = 2) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    text = f"{frac:06d}".rstrip("0")
    if len(text) < currency_digits:
        text = (text + "000000")[:currency_digits]
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


class ReferenceRater:
    def __init__(self, ir: dict[str, Any], currency_digits: Mapping[str, int] | None = None) -> None:
        self.ir = ir
        self.digits = dict(currency_digits or {})

    # -- lookups -------------------------------------------------------------------------------
    def _version(self, plan: dict[str, Any], at: datetime) -> dict[str, Any] | None:
        found = None
        for v in plan["versions"]:
            tz = ZoneInfo(self.ir["time_bands"][v["time_bands"]]["timezone"])
            start = datetime.combine(date.fromisoformat(v["effective_from"]), time(0), tzinfo=tz)
            if start <= at:
                found = v
        return found

    def _zone(self, visited: str) -> str:
        if not visited:
            return "home"
        other = ""
        for zid, z in self.ir["zones"].items():
            if visited in z["visited_networks"]:
                return str(zid)
            if z["other_networks"]:
                other = zid
        return other

    def _group(self, v: dict[str, Any], number: str) -> tuple[str, str]:
        prefixes = {p: g for g in v["destinations"] for p in self.ir["destinations"][g]["prefixes"]}
        for n in range(len(number), 0, -1):
            if number[:n] in prefixes:
                return prefixes[number[:n]], number[:n]
        return "", ""

    def _band(self, tb: dict[str, Any], at: datetime) -> str:
        local = at.astimezone(ZoneInfo(tb["timezone"]))
        day = local.date()
        holiday = day.isoformat() in tb["holidays"]["dates"] or f"{day.month:02d}-{day.day:02d}" in tb["holidays"]["recurring"]
        name = _WEEKDAYS[day.weekday()] + ("_holiday" if holiday else "")
        segments = tb["days"].get(name) or tb["days"][_WEEKDAYS[day.weekday()]]
        minute = local.hour * 60 + local.minute
        return next(str(b) for s, e, b in segments if s <= minute < e)

    def _rate_for(self, v: dict[str, Any], key: tuple[str, ...], band: str) -> str | None:
        rows = {tuple(r[:5]): r[5] for r in v["rate_table"]}
        service, direction, zone, group = key
        if group and group not in {r[3] for r in v["rate_table"]}:
            group = ""  # a group the plan knows only for bundles or discounts prices like no group
        return rows.get((service, direction, zone, group, band))

    # -- rating --------------------------------------------------------------------------------
    def rate(self, cdr: MediatedCdr, plan_id: str, bundles: Mapping[str, int] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
        state = dict(bundles or {})
        service = cdr.service.value if hasattr(cdr.service, "value") else str(cdr.service)
        direction = cdr.direction.value if hasattr(cdr.direction, "value") else str(cdr.direction)
        plan = self.ir["tariff_plans"].get(plan_id)
        if plan is None:
            return {"cdr_id": cdr.cdr_id, "status": "unrated", "reason": "no-plan", **({"plan": plan_id} if plan_id else {})}, state
        v = self._version(plan, cdr.start_time)
        if v is None:
            return {"cdr_id": cdr.cdr_id, "status": "unrated", "reason": "no-version", "plan": plan_id}, state
        zone = self._zone(cdr.visited_network)
        if not zone:
            return {"cdr_id": cdr.cdr_id, "status": "unrated", "reason": "no-zone", "plan": plan_id}, state
        group, prefix = self._group(v, cdr.b_number)
        units = cdr.duration_seconds if service == "voice" else (
            cdr.volume_up_bytes + cdr.volume_down_bytes if service == "data" else cdr.event_count)
        tb = self.ir["time_bands"][v["time_bands"]]
        key = (service, direction, zone, group)
        band = self._band(tb, cdr.start_time)
        first = self._rate_for(v, key, band)
        if first is None:
            return {"cdr_id": cdr.cdr_id, "status": "unrated", "reason": "no-rate", "plan": plan_id}, state
        spans = [[0, units, band, first]]
        if service == "voice" and self.ir["rates"][first]["model"] == "stepped" and units > 0:
            # walk the call minute by minute (UTC minutes: every zone offset is a whole number of minutes)
            spans = []
            start = cdr.start_time
            t = 0
            while t < units:
                b = self._band(tb, start + timedelta(seconds=t))
                step = 60 - (start + timedelta(seconds=t)).second
                end = min(t + step, units)
                rate = self._rate_for(v, key, b)
                if rate is None:
                    return {"cdr_id": cdr.cdr_id, "status": "unrated", "reason": "no-rate", "plan": plan_id}, state
                if spans and spans[-1][2] == b:
                    spans[-1][1] = end
                else:
                    spans.append([t, end, b, rate])
                t = end
            if not spans:
                spans = [[0, 0, band, first]]
        # increments on one grid from the start: an increment belongs to the span and step where it starts
        parts: list[dict[str, Any]] = []   # {span, units, price, per, inc, covered, tiered}
        t = 0
        for i, (_s, end, _b, rid) in enumerate(spans):
            r = self.ir["rates"][rid]
            limit = units if i == len(spans) - 1 else min(end, units)
            if r["model"] == "tiered":
                if units > t:
                    inc = r["tiers"]["increment"]
                    billed = -(-(units - t) // inc) * inc
                    parts.append({"span": i, "units": billed, "covered": 0, "tiered": True})
                    t += billed
                continue
            steps = r["steps"]
            while t < limit:
                idx = max(k for k, s in enumerate(steps) if s[0] <= t)
                frm, price, per, inc = steps[idx]
                lim = min(limit, steps[idx + 1][0]) if idx + 1 < len(steps) else limit
                n = -(-(lim - t) // inc)
                parts.append({"span": i, "units": n * inc, "price": price, "per": per, "inc": inc, "covered": 0, "tiered": False})
                t += n * inc
        # bundles, by priority then id, cover billed units in order
        uses = []
        usable = []
        for bid, left in state.items():
            b = self.ir["bundles"].get(bid)
            if left <= 0 or b is None or b["service"] != service:
                continue
            if b["destinations"] and group not in b["destinations"]:
                continue
            if b["zones"] and zone not in b["zones"] and "any" not in b["zones"]:
                continue
            if b["condition"] is not None and not condition_from_plain(b["condition"]).to_python()(self._facts(cdr, v, plan_id, service, direction, zone, group, units)):
                continue
            usable.append((b["priority"], bid))
        for _p, bid in sorted(usable):
            left, took = state[bid], 0
            for p in parts:
                take = min(p["units"] - p["covered"], left)
                p["covered"] += take
                left -= take
                took += take
            if took:
                state[bid] = left
                uses.append({"bundle": bid, "units": took})
        # money
        amounts = []
        for i, (_s, _e, _b, rid) in enumerate(spans):
            r = self.ir["rates"][rid]
            mine = [p for p in parts if p["span"] == i]
            rd = r["rounding"]
            if r["model"] == "tiered":
                tiers = r["tiers"]
                charged = sum(p["units"] - p["covered"] for p in mine)
                amount = _tiers(charged, tiers["levels"], tiers["mode"], tiers["per"])
            else:
                amount = Fraction(0)
                for p in mine:
                    charged = p["units"] - p["covered"]
                    if rd["scope"] == "per_increment":
                        each = _round(Fraction(p["price"] * p["inc"], p["per"]), rd["mode"], rd["decimals"])
                        amount += each * -(-charged // p["inc"])
                    else:
                        amount += Fraction(p["price"] * charged, p["per"])
            if rd["scope"] == "per_span":
                amount = Fraction(_round(amount, rd["mode"], rd["decimals"]))
            amounts.append(amount)
        lead = self.ir["rates"][spans[0][3]]
        billed = sum(p["units"] for p in parts)
        if billed and all(p["units"] == p["covered"] for p in parts):
            gross = 0
        else:
            total = sum(amounts, Fraction(0)) + lead["connect_fee"]
            total = max(total, Fraction(lead["minimum_charge"]))
            if lead["maximum_cost"] is not None:
                total = min(total, Fraction(lead["maximum_cost"]["amount"]))
            gross = _round(total, lead["rounding"]["mode"], lead["rounding"]["decimals"])
        net, lines = gross, []
        for did in v["discounts"]:
            d = self.ir["discount_plans"][did]
            if d["level"] != "cdr" or not gross:
                continue
            if d["services"] and service not in d["services"]:
                continue
            if d["destinations"] and group not in d["destinations"]:
                continue
            if d["condition"] is not None:
                facts = self._facts(cdr, v, plan_id, service, direction, zone, group, units)
                facts.update({"plan": plan_id, "charge_micros": gross})
                if not condition_from_plain(d["condition"]).to_python()(facts):
                    continue
            if d["type"] == "percentage":
                off = -_round(Fraction(d["percent"] * net, 100 * 1_000_000), d["rounding"]["mode"], d["rounding"]["decimals"])
            else:
                off = -min(d["amount"], max(net, 0))
            off = max(off, -net)
            if off:
                lines.append({"discount": did, "amount": _money(off, self._digits(plan["currency"]))})
                net += off
        cur = plan["currency"]
        digits = self._digits(cur)
        out: dict[str, Any] = {
            "cdr_id": cdr.cdr_id, "status": "rated", "charge": _money(net, digits), "charge_micros": net, "currency": cur,
            "plan": plan_id, "version": v["version"], "service": service, "destination": group, "prefix": prefix, "zone": zone,
            "units": units,
            "spans": [{"start": s, "end": e, "band": b, "rate": rid, "billed_units": sum(p["units"] for p in parts if p["span"] == i),
                       "bundle_units": sum(p["covered"] for p in parts if p["span"] == i),
                       "charge": _money(_half_even_micro(amounts[i]), digits)}
                      for i, (s, e, b, rid) in enumerate(spans)],
        }
        if uses:
            out["bundles"] = uses
        if lines:
            out["gross"] = _money(gross, digits)
            out["discounts"] = lines
        return out, state

    def _digits(self, currency: str) -> int:
        if currency in self.digits:
            return self.digits[currency]
        from engine.currencies import MINOR_UNITS

        return MINOR_UNITS.get(currency, 2)

    @staticmethod
    def _facts(cdr: MediatedCdr, v: dict[str, Any], plan_id: str, service: str, direction: str, zone: str, group: str,
               units: int) -> dict[str, Any]:
        facts: dict[str, Any] = {"service": service, "direction": direction, "zone": zone, "destination": group, "units": units,
                                 "a_number": cdr.a_number, "b_number": cdr.b_number, "imsi": cdr.imsi, "tenant": cdr.tenant,
                                 "visited_network": cdr.visited_network, "plan": plan_id, "plan_version": v["version"],
                                 "source": cdr.source, "supplementary_code": cdr.supplementary_code}
        for k, val in cdr.attributes.items():
            facts.setdefault(k, val)
        return facts


def _tiers(units: int, levels: list[list[Any]], mode: str, per: int) -> Fraction:
    if units <= 0:
        return Fraction(0)
    if mode == "volume":
        for up_to, price, flat in levels:
            if up_to is None or units <= up_to:
                return Fraction(price * units, per) + flat
    total, lower = Fraction(0), 0
    for up_to, price, flat in levels:
        upper = units if up_to is None else min(units, up_to)
        if upper > lower:
            total += Fraction(price * (upper - lower), per) + flat
        if up_to is None or units <= up_to:
            break
        lower = up_to
    return total


def _half_even_micro(amount: Fraction) -> int:
    return int(amount) if amount.denominator == 1 else _round(amount, "half_even", 6)


def reason_code(rated: dict[str, Any]) -> str:
    """The stable code of an unrated reason ("no-rate: ..." -> "no-rate")."""
    return str(rated.get("reason", "")).split(":", 1)[0]


__all__ = ["ReferenceRater", "reason_code"]
