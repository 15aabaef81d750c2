"""Import a CGRateS tariff-plan folder (its rating CSVs) as Rulebill plan files.

Read (by their documented columns; a line starting with ``#`` is a comment or the header):

* ``Destinations.csv``      ``Id,Prefix``
* ``Rates.csv``             ``Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart``: the rows of one Id are
  the slots of one rate, each from its GroupIntervalStart on (durations ``60s``, ``1m``, ``1h30m`` or seconds)
* ``DestinationRates.csv``  ``Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy``
* ``Timings.csv``           ``Id,Years,Months,MonthDays,WeekDays,Time`` (``*any``; weekdays 1 Monday .. 6, 0 or 7 Sunday)
* ``RatingPlans.csv``       ``Id,DestinationRatesId,TimingTag,Weight``
* ``RatingProfiles.csv``    ``Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject``

Written (:func:`import_cgrates` returns the files; the caller writes them and validates them with the normal loader):

* a ``destination_group`` per destination (``DST_<ID>``); a prefix in several destinations gets a ``priority`` from
  the weights of the rating-plan bindings that name them;
* a ``rate`` per (rates, rounding, maximum cost) combination a destination-rate uses (``RT_<RATESTAG>``, then
  ``_2``...): slots become ``steps``; ConnectFee ``connect_fee``; RoundingMethod ``*up``/``*down``/``*middle``
  becomes ``up``/``down``/``half_up`` with RoundingDecimals; MaxCost with ``*free`` becomes ``maximum_cost`` beyond
  ``free_beyond`` and with ``*disconnect`` beyond ``disconnect``;
* a ``time_bands`` set per rating plan (``TB_<PLAN>``): a timing applies on its weekdays from its Time to the end of
  the day; where several apply, the higher binding weight wins, then the later start (what CGRateS does).  Each band
  is one distinct set of timings in force, so every destination gets the rate its own bindings give it there;
* a ``tariff_plan`` per rating profile subject and category (``TP_<SUBJECT>`` for calls, ``TP_<SUBJECT>_<CATEGORY>``
  for other categories), one version per ActivationTime (from that date), ``extends`` its RatesFallbackSubject's plan.

Everything that cannot be carried over exactly (Years/Months/MonthDays other than ``*any``, rounding finer than
6 decimals, an activation that is not at midnight, an unknown category ...) goes to the report as
``file:line: what`` and the import goes on; a wrong column count, an unknown rounding method or strategy, a bad
number or a dangling reference is an error (``file:line``), all of them collected, and nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable, Container, Iterable

from engine.money import MAX_DECIMALS
from engine.yamlio import Problem

FILES = ("Destinations.csv", "Rates.csv", "DestinationRates.csv", "Timings.csv", "RatingPlans.csv", "RatingProfiles.csv")
COLUMNS = {"Destinations.csv": 2, "Rates.csv": 6, "DestinationRates.csv": 7, "Timings.csv": 6, "RatingPlans.csv": 4,
           "RatingProfiles.csv": 6}
ROUNDING = {"*up": "up", "*down": "down", "*middle": "half_up"}
STRATEGY = {"*free": "free_beyond", "*disconnect": "disconnect", "": "free_beyond"}
CATEGORY_SERVICE = {"call": "voice", "voice": "voice", "sms": "sms", "mms": "mms", "data": "data", "generic": "supplementary"}
SERVICE_UNIT = {"voice": "second", "sms": "event", "mms": "event", "data": "byte", "supplementary": "event"}
ANY = "*any"
MAX_ROWS = 1_000_000      # rows per CSV file: the bound of one import
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?$")
_DAY = 86400


@dataclass
class Imported:
    files: dict[str, str] = field(default_factory=dict)        # relative path -> YAML text
    problems: list[Problem] = field(default_factory=list)      # errors: nothing should be written
    unmapped: list[Problem] = field(default_factory=list)      # what was not carried over exactly (the report)


@dataclass(frozen=True)
class _Row:
    file: str
    line: int
    cells: tuple[str, ...]


class _Reader:
    def __init__(self, folder: Path, out: Imported, read: Callable[[Path], str]) -> None:
        self.folder, self.out, self.read = folder, out, read
        # ids whose rows had errors (already reported): a reference to one is not reported again as dangling
        self.broken: set[str] = set()

    def rows(self, name: str, required: bool = True) -> list[_Row]:
        path = self.folder / name
        try:
            text = self.read(path)
        except FileNotFoundError:
            if required:
                self.out.problems.append(Problem(str(path), 0, 0, "cgrates.missing-file", f"{name} is missing from {self.folder}"))
            return []
        except OSError as exc:
            self.out.problems.append(Problem(str(path), 0, 0, "cgrates.read", f"{name} cannot be read: {exc.strerror or exc}"))
            return []
        out: list[_Row] = []
        reader = csv.reader(io.StringIO(text))
        for cells in reader:
            line = reader.line_num
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            if len(out) >= MAX_ROWS:
                self.out.problems.append(Problem(str(path), line, 0, "cgrates.too-many-rows", f"more than {MAX_ROWS} rows"))
                break
            if len(cells) != COLUMNS[name]:
                self.out.problems.append(Problem(str(path), line, 0, "cgrates.columns",
                                                 f"expected {COLUMNS[name]} columns, got {len(cells)}"))
                continue
            out.append(_Row(str(path), line, tuple(c.strip() for c in cells)))
        return out

    def known(self, row: _Row, ref: str, table: Container[str], what: str, where: str) -> bool:
        """Whether ``ref`` is defined in ``table``; a dangling one is reported unless its own rows had errors."""
        if ref in table:
            return True
        if ref not in self.broken:
            self.error(row, "cgrates.ref", f"{what} {ref!r} {'are' if what.endswith('s') else 'is'} not in {where}")
        return False

    def error(self, row: _Row, code: str, message: str) -> None:
        self.out.problems.append(Problem(row.file, row.line, 0, code, message))

    def unmapped(self, row: _Row, message: str) -> None:
        self.out.unmapped.append(Problem(row.file, row.line, 0, "cgrates.unmapped", message))


def csv_problem(p: Problem) -> str:
    """A CSV problem as ``file:line: code: message`` (a CSV has no columns worth pointing at)."""
    return f"{p.file}:{p.line}: {p.code}: {p.message}"


def ident(prefix: str, tag: str) -> str:
    """A Rulebill id for a CGRateS tag: ``DST_FR`` stays, ``DST_1002`` and ``1002`` -> ``DST_N1002``, ``*any`` -> ``TP_ANY``
    (the body of a Rulebill id starts with a letter)."""
    body = re.sub(r"[^A-Z0-9_]", "_", tag.upper().lstrip("*")).strip("_") or "X"
    if prefix and body.startswith(prefix) and len(body) > len(prefix):
        body = body[len(prefix):]
    return prefix + (body if body[0].isalpha() else "N" + body)


def seconds(text: str) -> int | None:
    """``60s`` / ``1m`` / ``1h30m`` / ``60`` -> seconds; None when not whole seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = _DURATION.match(text)
    if not m or not text:
        return None
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def _amount(reader: _Reader, row: _Row, text: str, what: str) -> str | None:
    try:
        value = Decimal(text or "0")
    except InvalidOperation:
        reader.error(row, "cgrates.number", f"{what} {text!r} is not a number")
        return None
    if not value.is_finite() or value < 0:
        reader.error(row, "cgrates.number", f"{what} {text!r} must be a non-negative number")
        return None
    if value != value.quantize(Decimal(1).scaleb(-MAX_DECIMALS), rounding="ROUND_DOWN"):
        reader.error(row, "cgrates.decimals", f"{what} {text!r} has more than {MAX_DECIMALS} decimals: Rulebill keeps money "
                                              f"exactly in micro-units (1/1,000,000)")
        return None
    return format(value.normalize(), "f") if value else "0"


@dataclass
class _Binding:
    rates: str          # DestinationRates id
    timing: str         # Timings id or *any
    weight: Decimal
    row: _Row


@dataclass
class _Timing:
    days: tuple[int, ...]
    start: int          # second of day


def import_cgrates(folder: Path, tenant: str = "mno", currency: str = "EUR",
                   read: Callable[[Path], str] | None = None) -> Imported:
    out = Imported()
    reader = _Reader(Path(folder), out, read or (lambda p: p.read_text(encoding="utf-8")))

    # -- destinations ------------------------------------------------------------------------
    destinations: dict[str, list[str]] = {}
    for row in reader.rows("Destinations.csv"):
        tag, prefix = row.cells
        prefix = prefix.lstrip("+")
        if not re.match(r"^[0-9A-Za-z*#.]{1,32}$", prefix):
            reader.error(row, "cgrates.prefix", f"{row.cells[1]!r} is not a number prefix")
            continue
        known = destinations.setdefault(tag, [])
        if prefix in known:
            reader.unmapped(row, f"prefix {prefix} listed twice in destination {tag}: kept once")
        else:
            known.append(prefix)

    broken = reader.broken

    # -- rates: slots by id --------------------------------------------------------------------
    slots: dict[str, list[tuple[int, str, int, int, str, _Row]]] = {}   # id -> [(start, rate, unit, increment, connect)]
    for row in reader.rows("Rates.csv"):
        tag, connect, rate, unit, increment, start = row.cells
        c, r = _amount(reader, row, connect, "ConnectFee"), _amount(reader, row, rate, "Rate")
        u, i, s = seconds(unit), seconds(increment), seconds(start or "0")
        for value, name, text in ((u, "RateUnit", unit), (i, "RateIncrement", increment), (s, "GroupIntervalStart", start)):
            if value is None:
                reader.error(row, "cgrates.duration", f"{name} {text!r} is not a whole number of seconds (60s, 1m, 60)")
        if c is None or r is None or not u or not i or s is None:
            if u == 0 or i == 0:
                reader.error(row, "cgrates.duration", "RateUnit and RateIncrement must be at least 1")
            broken.add(tag)
            continue
        slots.setdefault(tag, []).append((s, r, u, i, c, row))

    # -- destination rates ---------------------------------------------------------------------
    # id -> [(destination tag or *any, rate key, row)]; a rate key is (rates tag, rounding, decimals, max cost, strategy)
    dest_rates: dict[str, list[tuple[str, tuple[str, str, int, str, str], _Row]]] = {}
    for row in reader.rows("DestinationRates.csv"):
        tag, dest, rates_tag, method, decimals_text, max_cost, strategy = row.cells
        ok = dest == ANY or reader.known(row, dest, destinations, "destination", "Destinations.csv")
        ok = reader.known(row, rates_tag, slots, "rates", "Rates.csv") and ok
        if method not in ROUNDING:
            reader.error(row, "cgrates.rounding-method", f"RoundingMethod {method!r} is not one of: {', '.join(ROUNDING)}")
            ok = False
        if strategy not in STRATEGY:
            reader.error(row, "cgrates.max-cost-strategy", f"MaxCostStrategy {strategy!r} is not one of: *free, *disconnect")
            ok = False
        if not decimals_text.isdigit():
            reader.error(row, "cgrates.number", f"RoundingDecimals {decimals_text!r} is not a whole number")
            ok = False
        cap = _amount(reader, row, max_cost, "MaxCost")
        if not ok or cap is None:
            broken.add(tag)
            continue
        decimals = int(decimals_text)
        if decimals > MAX_DECIMALS:
            reader.unmapped(row, f"RoundingDecimals {decimals} is finer than Rulebill's {MAX_DECIMALS} (money in micro-units): "
                                 f"rounded to {MAX_DECIMALS}")
            decimals = MAX_DECIMALS
        dest_rates.setdefault(tag, []).append((dest, (rates_tag, method, decimals, cap, strategy), row))

    # -- timings ---------------------------------------------------------------------------------
    timings: dict[str, _Timing] = {ANY: _Timing(tuple(range(7)), 0)}
    for row in reader.rows("Timings.csv", required=False):
        tag, years, months, month_days, week_days, time_text = row.cells
        for name, cell in (("Years", years), ("Months", months), ("MonthDays", month_days)):
            if cell not in (ANY, ""):
                reader.unmapped(row, f"timing {tag}: {name} {cell!r} not mapped (time bands repeat weekly): imported as "
                                     f"if {name} were *any")
        days = _week_days(reader, row, week_days)
        begins = _clock(time_text)
        if days is None or begins is None:
            if begins is None:
                reader.error(row, "cgrates.time", f"Time {time_text!r} is not HH:MM:SS (or *asap)")
            broken.add(tag)
            continue
        timings[tag] = _Timing(days, begins)

    # -- rating plans ----------------------------------------------------------------------------
    plans: dict[str, list[_Binding]] = {}
    for row in reader.rows("RatingPlans.csv"):
        tag, rates_id, timing, weight_text = row.cells
        ok = reader.known(row, rates_id, dest_rates, "destination rates", "DestinationRates.csv")
        ok = reader.known(row, timing, timings, "timing", "Timings.csv") and ok
        try:
            weight = Decimal(weight_text or "0")
        except InvalidOperation:
            reader.error(row, "cgrates.number", f"Weight {weight_text!r} is not a number")
            ok = False
        if ok:
            plans.setdefault(tag, []).append(_Binding(rates_id, timing, weight, row))
        else:
            broken.add(tag)

    # -- rating profiles -------------------------------------------------------------------------
    profiles: dict[str, list[tuple[str, str, str, _Row]]] = {}   # plan id -> [(date, rating plan, fallback plan id)]
    services: dict[str, str] = {}
    for row in reader.rows("RatingProfiles.csv"):
        _tenant, category, subject, activation, plan_tag, fallback = row.cells
        service = CATEGORY_SERVICE.get(category)
        if service is None:
            reader.unmapped(row, f"category {category!r} has no Rulebill service: imported as voice")
            service = "voice"
        when = _activation(reader, row, activation)
        if plan_tag in broken or not reader.known(row, plan_tag, plans, "rating plan", "RatingPlans.csv"):
            continue
        if when is None:
            continue
        pid = _plan_id(subject, category)
        parent = _plan_id(fallback, category) if fallback else ""
        services[pid] = service
        profiles.setdefault(pid, []).append((when, plan_tag, parent, row))
    for pid, versions in profiles.items():
        for _when, _plan, parent, row in versions:
            if parent and parent not in profiles:
                reader.error(row, "cgrates.ref", f"RatesFallbackSubject names no rating profile of this category ({parent})")

    if out.problems:
        return out
    _write(out, reader, tenant, currency, destinations, slots, dest_rates, timings, plans, profiles, services)
    return out


def _week_days(reader: _Reader, row: _Row, text: str) -> tuple[int, ...] | None:
    if text in (ANY, ""):
        return tuple(range(7))
    days: set[int] = set()
    for part in text.split(";"):
        if not part.strip().isdigit() or int(part) > 7:
            reader.error(row, "cgrates.weekday", f"WeekDays {text!r}: {part!r} is not 0..7 (1 Monday, 0 or 7 Sunday)")
            return None
        n = int(part)
        days.add(6 if n in (0, 7) else n - 1)    # Rulebill counts from Monday = 0
    return tuple(sorted(days))


def _clock(text: str) -> int | None:
    if text in ("*asap", "", "00:00:00"):
        return 0
    m = re.match(r"^(\d{1,2}):(\d{2}):(\d{2})$", text)
    if not m:
        return None
    h, mi, s = (int(g) for g in m.groups())
    return h * 3600 + mi * 60 + s if h < 24 and mi < 60 and s < 60 else None


def _activation(reader: _Reader, row: _Row, text: str) -> str | None:
    if text in ("", "*asap"):
        reader.unmapped(row, "ActivationTime empty or *asap: imported as in force from 2000-01-01")
        return "2000-01-01"
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        reader.error(row, "cgrates.time", f"ActivationTime {text!r} is not an ISO date-time")
        return None
    if (when.hour, when.minute, when.second) != (0, 0, 0):
        reader.unmapped(row, f"ActivationTime {text}: a version takes effect at 00:00 of its date, imported from {when.date()}")
    return when.date().isoformat()


def _plan_id(subject: str, category: str) -> str:
    return ident("TP_", subject if category in ("call", "voice") else f"{subject}_{category}")


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _write(out: Imported, reader: _Reader, tenant: str, currency: str, destinations: dict[str, list[str]],
           slots: dict[str, list[tuple[int, str, int, int, str, _Row]]],
           dest_rates: dict[str, list[tuple[str, tuple[str, str, int, str, str], _Row]]], timings: dict[str, _Timing],
           plans: dict[str, list[_Binding]], profiles: dict[str, list[tuple[str, str, str, _Row]]],
           services: dict[str, str]) -> None:
    # a prefix in several destinations: the one bound with the higher weight wins
    priority: dict[str, Decimal] = {}
    for bindings in plans.values():
        for b in bindings:
            for dest, _key, _row in dest_rates[b.rates]:
                priority[dest] = max(priority.get(dest, b.weight), b.weight)
    for tag, prefixes in sorted(destinations.items()):
        did = ident("DST_", tag)
        lines = ["kind: destination_group", f"id: {did}", f"name: {_q(tag)}"]
        if priority.get(tag):
            lines.append(f"priority: {int(priority[tag])}")
        lines.append(f"prefixes: [{', '.join(_q(p) for p in prefixes)}]")
        out.files[f"destinations/{did}.yaml"] = "\n".join(lines) + "\n"

    # rates: one per (rates tag, rounding, max cost) combination, per unit of the services using it
    rate_ids: dict[tuple[tuple[str, str, int, str, str], str], str] = {}
    used_units = {(key, SERVICE_UNIT[services[pid]]) for pid, versions in profiles.items() for _w, plan, _p, _r in versions
                  for b in plans[plan] for _d, key, _row in dest_rates[b.rates]}
    taken: set[str] = set()
    for key, unit in sorted(used_units):
        rates_tag, method, decimals, cap, strategy = key
        rid = base = ident("RT_", rates_tag)
        n = 1
        while rid in taken:
            n += 1
            rid = f"{base}_{n}"
        taken.add(rid)
        rate_ids[(key, unit)] = rid
        steps = sorted(slots[rates_tag])
        first = steps[0]
        lines = ["kind: rate", f"id: {rid}", f"name: {_q(f'CGRateS rates {rates_tag}')}", f"unit: {unit}", f"currency: {currency}"]
        if first[0] != 0:
            reader.unmapped(first[5], f"rates {rates_tag}: the first GroupIntervalStart is {first[0]} s: the units before it "
                                      f"are priced by its slot")
        connects = {s[4] for s in steps}
        if len(connects) > 1:
            reader.unmapped(first[5], f"rates {rates_tag}: slots with different ConnectFee; the first slot's is charged")
        if first[4] != "0":
            lines.append(f"connect_fee: {_q(first[4])}")
        lines.append("steps:")
        for i, (start, price, per, increment, _c, _row) in enumerate(steps):
            lines.append(f"  - {{from: {0 if i == 0 else start}, price: {_q(price)}, per: {per}, increment: {increment}}}")
        lines.append(f"rounding: {{mode: {ROUNDING[method]}, decimals: {decimals}}}")
        if cap != "0":
            lines.append(f"maximum_cost: {{amount: {_q(cap)}, beyond: {STRATEGY[strategy]}}}")
        out.files[f"rates/{rid}.yaml"] = "\n".join(lines) + "\n"

    # time bands and rate rows per rating plan
    band_set: dict[str, str] = {}
    plan_rows: dict[str, list[tuple[str, str, tuple[str, str, int, str, str]]]] = {}
    for plan_tag in sorted({plan for versions in profiles.values() for _w, plan, _p, _r in versions}):
        bindings = plans[plan_tag]
        bands, windows = _states(sorted({b.timing for b in bindings}), timings)
        tid = band_set[plan_tag] = ident("TB_", plan_tag)
        lines = ["kind: time_bands", f"id: {tid}", f"name: {_q(f'timings of rating plan {plan_tag}')}", "timezone: UTC",
                 "bands:"]
        for band, wins in windows.items():
            lines += [f"  - id: {band}", "    windows:"]
            for day, start, end in wins:
                lines.append(f"      - {{days: {('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[day]}, "
                             f"from: {_q(_hms(start))}, to: {_q(_hms(end))}}}")
        out.files[f"time_bands/{tid}.yaml"] = "\n".join(lines) + "\n"
        # per destination, in each band (a set of timings in force): the binding with the higher weight, then the later start
        plan_rows[plan_tag] = sorted((dest, band, key) for band, active in bands.items()
                                     for dest, key in _winners(bindings, active, dest_rates, timings).items())

    for pid, versions in sorted(profiles.items()):
        service = services[pid]
        unit = SERVICE_UNIT[service]
        versions = sorted(versions, key=lambda v: v[0])
        lines = ["kind: tariff_plan", f"id: {pid}", f"tenant: {_q(tenant)}", "segment: retail_postpaid", f"currency: {currency}"]
        parents = {p for _w, _plan, p, _r in versions if p}
        if len(parents) > 1:
            reader.unmapped(versions[-1][3], f"{pid}: different RatesFallbackSubject per activation; the last one is kept")
        if parents:
            lines.append(f"extends: {versions[-1][2] or sorted(parents)[0]}")
        lines.append("versions:")
        seen_dates: set[str] = set()
        for n, (when, plan_tag, _parent, row) in enumerate(versions, 1):
            if when in seen_dates:
                reader.unmapped(row, f"{pid}: a second activation on {when}: the later one of that day is kept")
                continue
            seen_dates.add(when)
            lines += [f"  - version: {len(seen_dates)}", f"    effective_from: {when}", f"    time_bands: {band_set[plan_tag]}",
                      "    rates:"]
            for dest, band, key in plan_rows[plan_tag]:
                dest_text = "any" if dest == ANY else ident("DST_", dest)
                lines.append(f"      - {{service: {service}, destination: {dest_text}, band: {band}, "
                             f"rate: {rate_ids[(key, unit)]}}}")
        out.files[f"tariff_plans/{pid}.yaml"] = "\n".join(lines) + "\n"


_Key = tuple[str, str, int, str, str]


def _winners(bindings: list[_Binding], active: frozenset[str], dest_rates: dict[str, list[tuple[str, _Key, _Row]]],
             timings: dict[str, _Timing]) -> dict[str, _Key]:
    """Destination -> the rate key of the winning binding among those whose timing is in force."""
    best: dict[str, tuple[Decimal, int, _Key]] = {}
    for b in bindings:
        if b.timing not in active:
            continue
        for dest, key, _row in dest_rates[b.rates]:
            rank = (b.weight, timings[b.timing].start, key)
            if dest not in best or rank[:2] > best[dest][:2]:
                best[dest] = rank
    return {dest: rank[2] for dest, rank in best.items()}


def _states(used: Iterable[str], timings: dict[str, _Timing]) -> tuple[dict[str, frozenset[str]], dict[str, list[tuple[int, int, int]]]]:
    """The week cut where the set of timings in force changes: band id -> that set, band id -> windows (day, start, end)."""
    used = list(used)
    names: dict[frozenset[str], str] = {}
    windows: dict[str, list[tuple[int, int, int]]] = {}
    for day in range(7):
        starts = sorted({0, *(timings[t].start for t in used if day in timings[t].days)})
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else _DAY
            active = frozenset(t for t in used if day in timings[t].days and timings[t].start <= start)
            if active not in names:
                label = "_".join(sorted(ident("", t) for t in active)) or "NONE"
                names[active] = label if label not in names.values() else f"{label}_{len(names)}"
            windows.setdefault(names[active], []).append((day, start, end))
    return {band: active for active, band in names.items()}, windows


def _hms(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
