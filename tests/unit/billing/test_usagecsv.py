"""A usage block written from PostgreSQL's binary arrays (``engine/billing/_usagecsv.c`` and its Python twin) is the
reference block of the same CDRs (``blocks_from_usage``: ``csv_row`` per CDR, the sums per line) byte for byte:
negative charges, microsecond start times, non-ASCII text, ties on the start time, sums past 64 bits, NULLs and
malformed arrays included."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.billing import usagecsv
from engine.billing.model import RatedUsage
from engine.billing.usage_blocks import UsageGroup, blocks_from_usage
from engine.billing.usagecsv import PG_EPOCH, block_text, block_text_py, pg_time

UTC = timezone.utc
INT8 = (-2**63, 2**63 - 1)
_c = usagecsv._c  # noqa: SLF001


def test_the_extension_is_built() -> None:
    assert _c is not None, "engine/billing/_usagecsv.c was not built: run `make test` (pip install -e .)"


def pg_array(cells: Sequence[bytes | None], oid: int = 25) -> bytes:
    """array_send's form of a one-dimensional array."""
    out = [struct.pack(">iiIii", 1, any(c is None for c in cells), oid, len(cells), 1)]
    for c in cells:
        out.append(struct.pack(">i", -1) if c is None else struct.pack(">i", len(c)) + c)
    return b"".join(out)


def _int8(v: int) -> bytes:
    return v.to_bytes(8, "big", signed=True)


def _micros(t: datetime) -> int:
    return (t - PG_EPOCH) // timedelta(microseconds=1)


def columns(usage: Sequence[RatedUsage]) -> list[bytes]:
    return [pg_array([u.cdr_id.encode() for u in usage]), pg_array([_int8(_micros(u.start_time)) for u in usage], 1184),
            pg_array([u.service.encode() for u in usage]), pg_array([u.destination.encode() for u in usage]),
            pg_array([u.tariff_plan.encode() for u in usage]), pg_array([_int8(u.units) for u in usage], 20),
            pg_array([_int8(u.charge_micros) for u in usage], 20), pg_array([u.currency.encode() for u in usage])]


def _reference(tenant: str, usage: Sequence[RatedUsage]) -> tuple[str, str, str, tuple[UsageGroup, ...]]:
    if not usage:
        return "", "", "", ()
    (block,) = blocks_from_usage(usage)
    frozen: Sequence[tuple[str, int]] = block.frozen  # type: ignore[assignment]
    return (block.rows, "\n".join(str(m) for _c, m in frozen), "\n".join(c for c, _m in frozen), block.groups)


def _groups(sums: list[usagecsv.Group]) -> tuple[UsageGroup, ...]:
    return tuple(sorted(UsageGroup(p, s, d, c, m, n, pg_time(f), pg_time(last)) for p, s, d, c, m, n, f, last in sums))


words = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
cdr_usage = st.lists(st.tuples(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),       # CDR id (made unique below)
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.sampled_from(["voice", "sms", "data", "données"]), words, st.sampled_from(["TP_A", "", "Tarif été"]),
    st.integers(*INT8), st.integers(*INT8), st.sampled_from(["EUR", "USD", "€"]),
), max_size=30)


def _usage(rows: list[tuple[str, datetime, str, str, str, int, int, str]], ties: bool) -> list[RatedUsage]:
    out = []
    for i, (cdr, start, svc, dest, plan, units, charge, cur) in enumerate(rows):
        if ties and out:
            start = out[-1].start_time                      # same start: ordered by CDR id, byte by byte
        out.append(RatedUsage(f"{cdr}{i}", "3361200000é", start, svc, dest, charge, cur, plan, 1, units))
    return out


@settings(max_examples=150, deadline=None)
@given(cdr_usage, st.booleans())
def test_the_block_is_the_reference_block_byte_for_byte(rows: list[tuple[str, datetime, str, str, str, int, int, str]],
                                                        ties: bool) -> None:
    usage = _usage(rows, ties)
    rows_, charges, ids, sums = block_text("mvnö", "3361200000é", columns(usage))
    assert (rows_, charges, ids, _groups(sums)) == _reference("mvnö", usage)
    python = block_text_py("mvnö", "3361200000é", columns(usage))
    assert block_text("mvnö", "3361200000é", columns(usage)) == python or any(
        abs(m) >= 2**63 for *_k, m, _n, _f, _l in python[3])     # only a sum past 64 bits is Python's alone


@pytest.mark.skipif(_c is None, reason="the C extension is not built (test_the_extension_is_built says so)")
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(*(st.one_of(st.none(), st.binary(max_size=5)) for _ in range(2)),
                          *(st.one_of(st.none(), st.integers(-2**40, 2**40)) for _ in range(3)),
                          *(st.one_of(st.none(), st.sampled_from([b"a", b"b", b""])) for _ in range(3))), max_size=12))
def test_nulls_are_written_as_the_python_writer_writes_them(rows: list[tuple[object, ...]]) -> None:
    """A CDR with a NULL value has no usage.csv row (SQL's string_agg had none); it still counts in its group."""
    cdr = [r[0] for r in rows]
    cols = [pg_array(cdr), pg_array([None if r[2] is None else _int8(r[2]) for r in rows]),  # type: ignore[arg-type]
            pg_array([r[5] for r in rows]), pg_array([r[6] for r in rows]), pg_array([r[7] for r in rows]),  # type: ignore[misc]
            pg_array([None if r[3] is None else _int8(r[3]) for r in rows]),  # type: ignore[arg-type]
            pg_array([None if r[4] is None else _int8(r[4]) for r in rows]), pg_array([r[1] for r in rows])]  # type: ignore[arg-type]
    try:
        expected: object = block_text_py("t", "m", cols)
    except (UnicodeDecodeError, ValueError) as e:
        expected = type(e)
    try:
        got: object = _c("t", "m", *cols)  # type: ignore[misc]
    except (UnicodeDecodeError, ValueError) as e:
        got = type(e)
    assert got == expected


def test_a_sum_past_64_bits_is_summed_in_python() -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    usage = [RatedUsage(f"c{i}", "m", t, "voice", "", 2**62, "EUR", "TP", 1, 1) for i in range(3)]
    rows, _charges, _ids, sums = block_text("t", "m", columns(usage))
    assert sums[0][4] == 3 * 2**62 and rows.count("\n") == 3
    if _c is not None:
        with pytest.raises(OverflowError):
            _c("t", "m", *columns(usage))


@pytest.mark.parametrize("writer", [block_text_py] + ([lambda t, m, cols: _c(t, m, *cols)] if _c is not None else []))  # type: ignore[misc]
def test_malformed_arrays_and_start_times_out_of_range_are_refused(writer) -> None:  # type: ignore[no-untyped-def]
    good = columns([RatedUsage("c1", "m", datetime(2026, 3, 1, tzinfo=UTC), "voice", "", 1, "EUR", "TP", 1, 1)])
    for bad in (good[0][:-1], good[0] + b"x", b"\x00\x00\x00\x02" + good[0][4:], b"", pg_array([b"c1", b"c2"])):
        with pytest.raises(ValueError):
            writer("t", "m", [bad, *good[1:]])
    with pytest.raises(ValueError):
        writer("t", "m", [*good[:5], pg_array([b"1234"], 20), *good[6:]])       # a bigint that is not 8 bytes
    with pytest.raises(ValueError):
        writer("t", "m", [good[0], pg_array([_int8(2**62)], 1184), *good[2:]])    # far past the year 9999
    with pytest.raises(UnicodeDecodeError):
        writer("t", "m", [*good[:2], pg_array([b"\xff"]), *good[3:]])
    empty = [struct.pack(">iiI", 0, 0, 25)] * 8
    assert writer("t", "m", empty) == ("", "", "", [])
