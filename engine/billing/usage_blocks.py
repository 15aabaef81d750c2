"""A number's rated CDRs of a period as one block: sums per invoice line, the per-CDR detail already written.

A bill run of 200 CDRs per account spends most of its time on things done once
per CDR (build a value, find its line, write its ``usage.csv`` row, list it to
freeze).  A :class:`UsageBlock` is what the store hands over instead, for each
number: the CDRs summed per (tariff plan, service, destination group,
currency) -- exactly the keys ``compute_bill`` sums them by when the number has
one subscriber on the account for the whole block -- and the detail rows
already formatted as ``usage.csv`` rows in the document's order (start time,
then CDR id), each beginning with :func:`line_tag` where the invoice line's id
goes, because line ids are known only once the bill is computed.  PostgreSQL
builds blocks in its read query (``store.billing``); :func:`blocks_from_usage`
builds the same blocks from per-CDR values (SQLite, the memory store, and the
reference the tests compare the SQL with).

A block fits a bill only when it cannot change the result: one subscriber of
the account owns every CDR of the block (:func:`block_fit`), every CDR names
its tariff plan, and none is after the period or in another currency.  An
account with several numbers with usage has one block per number, each with
its own owner, their rows merged in the document's order.  When a block does
not fit, the bill run reads that account's CDRs one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from engine.billing.cycles import local_midnight
from engine.billing.model import RatedUsage, SubscriberService
from engine.money import MICROS

try:
    from engine.billing._usagecsv import fill_tags as _fill_tags
except ImportError:  # pragma: no cover - a build without a C compiler (engine.billing.usagecsv says the same)
    _fill_tags = None

TAG_OPEN, TAG_SEP, TAG_CLOSE = "\x02", "\x1f", "\x03"   # never in ids, codes or the CSV's values


class UsageGroup(NamedTuple):
    """The CDRs of one number with the same tariff plan, service, destination group and currency."""

    tariff_plan: str
    service: str
    destination: str
    currency: str
    micros: int
    cdrs: int                # how many CDRs
    first: datetime          # the earliest and latest start time
    last: datetime


@dataclass(frozen=True)
class UsageBlock:
    msisdn: str
    groups: tuple[UsageGroup, ...]
    rows: str                # usage.csv rows (no header), each starting with line_tag(plan, service, destination)
    frozen: object           # the store's own form of the (CDR id, charge) list; handed back to freeze_blocks

    @property
    def first(self) -> datetime:
        return min(g.first for g in self.groups)

    @property
    def last(self) -> datetime:
        return max(g.last for g in self.groups)


def line_tag(tariff_plan: str, service: str, destination: str) -> str:
    return f"{TAG_OPEN}{tariff_plan}{TAG_SEP}{service}{TAG_SEP}{destination}{TAG_CLOSE}"


def charge_text(micros: int) -> str:
    """A rated charge with six decimals, as usage.csv writes it."""
    return f"{micros // MICROS}.{micros % MICROS:06d}" if micros >= 0 else f"-{-micros // MICROS}.{-micros % MICROS:06d}"


def row_text(line_id: str, cdr_id: str, msisdn: str, start: str, service: str, destination: str, tariff_plan: str, units: int,
             charge_micros: int, currency: str) -> str:
    """A usage.csv row from its cells (``start``: the UTC start time's ISO text); also the bill run's Python writer of
    PostgreSQL's columns (engine.billing.usagecsv)."""
    return f"{line_id},{cdr_id},{msisdn},{start},{service},{destination},{tariff_plan},{units},{charge_text(charge_micros)},{currency}\n"


def csv_row(u: RatedUsage, line_id: str) -> str:
    """One CDR's usage.csv row; its start time in UTC (as PostgreSQL writes it in a block)."""
    start = u.start_time if not u.start_time.utcoffset() else u.start_time.astimezone(timezone.utc)
    return row_text(line_id, u.cdr_id, u.msisdn, start.isoformat(), u.service, u.destination, u.tariff_plan, u.units, u.charge_micros,
                    u.currency)


def blocks_from_usage(usage: Iterable[RatedUsage]) -> list[UsageBlock]:
    """The reference: blocks built from per-CDR values (the frozen form is the list of (CDR id, charge))."""
    by_number: dict[str, list[RatedUsage]] = {}
    for u in usage:
        by_number.setdefault(u.msisdn, []).append(u)
    out = []
    for msisdn in sorted(by_number):
        mine = sorted(by_number[msisdn], key=lambda u: (u.start_time, u.cdr_id))
        sums: dict[tuple[str, str, str, str], list[object]] = {}
        for u in mine:
            key = (u.tariff_plan, u.service, u.destination, u.currency)
            s = sums.get(key)
            if s is None:
                sums[key] = [u.charge_micros, 1, u.start_time, u.start_time]
            else:
                s[0] += u.charge_micros  # type: ignore[operator]
                s[1] += 1  # type: ignore[operator]
                s[3] = u.start_time
        groups = tuple(UsageGroup(*key, *s) for key, s in sorted(sums.items()))  # type: ignore[arg-type]
        rows = "".join([csv_row(u, line_tag(u.tariff_plan, u.service, u.destination)) for u in mine])
        out.append(UsageBlock(msisdn, groups, rows, tuple((u.cdr_id, u.charge_micros) for u in mine)))
    return out


class Fit(NamedTuple):
    fits: bool
    owners: Mapping[str, SubscriberService] = {}    # who owns each block's CDRs, by number (empty: no usage)


def block_fit(blocks: Sequence[UsageBlock], services: Sequence[SubscriberService], tz: ZoneInfo, currency: str,
              end_at: datetime) -> Fit:
    """Whether an account's blocks give its bill unchanged, and the subscriber owning each block's CDRs.

    Each block (one number) must be owned by one subscriber of the account for all its CDRs, and no two blocks by the
    same subscriber (one who changed number): the bill's usage lines are per subscriber, and the document's rows are
    merged across the numbers in start time order (:func:`merge_rows`)."""
    owners: dict[str, SubscriberService] = {}
    for block in blocks:
        owner = _owner(block, services, tz, currency, end_at)
        if owner is None or any(o.subscriber_id == owner.subscriber_id for o in owners.values()):
            return Fit(False)
        owners[block.msisdn] = owner
    return Fit(True, owners)


def _owner(block: UsageBlock, services: Sequence[SubscriberService], tz: ZoneInfo, currency: str,
           end_at: datetime) -> SubscriberService | None:
    if not block.groups or block.last >= end_at:
        return None
    for g in block.groups:
        if not g.tariff_plan or g.currency != currency:
            return None
    first, last = block.first, block.last
    owner = None
    for svc in services:
        if svc.msisdn != block.msisdn:
            continue
        if owner is not None:
            return None                       # two subscribers had the number in turn: CDR by CDR
        if local_midnight(svc.assigned_from, tz) > first:
            return None
        if svc.assigned_until is not None and last >= local_midnight(svc.assigned_until, tz):
            return None
        owner = svc
    return owner


def merge_rows(parts: Sequence[str]) -> str:
    """Several numbers' filled-in usage.csv rows as one, in the document's order: start time, then CDR id.

    Each part is in that order already; a row is ``line id,CDR id,number,start,...`` with the start in UTC in one
    ISO 8601 layout (a whole second's ``+`` sorts before a fraction's ``.``), so comparing the texts compares the
    instants, and CDR ids compare as the per-CDR sort compares them."""
    if len(parts) == 1:
        return parts[0]

    def key(row: str) -> tuple[str, str]:
        cells = row.split(",", 4)
        return cells[3], cells[1]

    rows = [row for part in parts for row in part.splitlines(keepends=True)]
    rows.sort(key=key)
    return "".join(rows)


def fill_line_ids(rows: str, line_ids: dict[tuple[str, str, str], str]) -> str:
    """The block's rows with each line tag replaced by its invoice line's id.

    In C (``_usagecsv.fill_tags``: one pass over the rows, the few distinct tags looked up once each), else
    :func:`fill_line_ids_py`; the same text or the same ValueError (tests/unit/billing/test_usage_blocks.py)."""
    by_tag = {f"{plan}{TAG_SEP}{service}{TAG_SEP}{destination}": line_id for (plan, service, destination), line_id in line_ids.items()}
    if _fill_tags is None:
        return _fill_py(rows, by_tag)
    try:
        return _fill_tags(rows, by_tag)
    except UnicodeError:   # text the C cannot take as UTF-8 (a lone surrogate): the Python split gives its text or error
        return _fill_py(rows, by_tag)
    except ValueError:
        raise ValueError("a usage row's line tag is not closed") from None
    except KeyError:
        raise ValueError("a usage row names no invoice line") from None


def fill_line_ids_py(rows: str, line_ids: dict[tuple[str, str, str], str]) -> str:
    """:func:`fill_line_ids` in Python (the reference the C function is held to)."""
    return _fill_py(rows, {f"{plan}{TAG_SEP}{service}{TAG_SEP}{destination}": line_id
                           for (plan, service, destination), line_id in line_ids.items()})


def _fill_py(rows: str, by_tag: dict[str, str]) -> str:
    # one split over the rows with the tags' closing marks turned into opening ones: text and tags alternate (a
    # ``str.replace`` per line scanned the whole text once per line; a ``partition`` per row cost a Python step per CDR)
    pieces = rows.replace(TAG_CLOSE, TAG_OPEN).split(TAG_OPEN)
    if len(pieces) % 2 == 0:
        raise ValueError("a usage row's line tag is not closed")
    try:
        pieces[1::2] = [by_tag[tag] for tag in pieces[1::2]]
    except KeyError:
        raise ValueError("a usage row names no invoice line") from None
    return "".join(pieces)
