"""RatingService reads a chunk's wire CDRs straight into evaluator rows (servers.convert.cdr_rows_from_pb): every CDR
gives the row, or the field violations, that cdr_from_pb + row_of give it (hypothesis over valid and damaged CDRs)."""

from __future__ import annotations

import gc

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from engine.errors import ErrorList
from engine.gcpause import collector_paused
from engine.rating.evaluator import row_of
from engine.rating.limits import EARLIEST_EPOCH, LATEST_EPOCH, CdrLimits
from servers.convert import cdr_from_pb, cdr_rows_from_pb

LIMITS = CdrLimits(max_call_seconds=3600, max_volume_bytes=10**9, max_events=100)


def text(longest: int) -> st.SearchStrategy[str]:
    """Text around a column's limit: short, at it, past it (NUL-free: the request check refuses those first)."""
    return st.one_of(st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=8),
                     st.integers(longest - 1, longest + 1).map(lambda n: "9" * n))


def around(limit: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 5), st.integers(limit - 1, limit + 1), st.integers(-3, -1), st.sampled_from([0, 60]))


@st.composite
def wire_cdr(draw: st.DrawFn) -> mpb.NormalisedCdr:
    msg = mpb.NormalisedCdr(
        cdr_id=draw(st.one_of(st.just(""), text(64))), source=draw(text(64)), origin_id=draw(text(255)),
        service=draw(st.integers(0, 6)), direction=draw(st.integers(0, 3)), a_number=draw(text(64)), b_number=draw(text(255)),
        imsi=draw(text(15)), duration_seconds=draw(around(LIMITS.max_call_seconds)),
        volume_up_bytes=draw(around(LIMITS.max_volume_bytes)), volume_down_bytes=draw(around(LIMITS.max_volume_bytes)),
        event_count=draw(around(LIMITS.max_events)), visited_network=draw(text(16)), supplementary_code=draw(text(16)),
        tenant_id=draw(text(40)))
    if draw(st.booleans()):
        seconds = draw(st.one_of(st.integers(EARLIEST_EPOCH - 2, EARLIEST_EPOCH + 2), st.integers(LATEST_EPOCH - 2, LATEST_EPOCH + 2),
                                 st.integers(0, 7_300_000_000)))
        msg.start_time.seconds = seconds
        msg.start_time.nanos = draw(st.one_of(st.just(0), st.integers(-1, 1_000_000_000)))
    if draw(st.integers(0, 9)) == 0:
        msg.charge.CopyFrom(common_pb2.Money(amount_micros=draw(st.integers(-10**16, 10**16)), currency=draw(text(3))))
    if draw(st.integers(0, 9)) == 0:
        msg.attributes.update(draw(st.dictionaries(st.sampled_from(["k", "rap_return", "x;y"]), st.text(max_size=3), max_size=2)))
    return msg


@settings(max_examples=200, deadline=None)
@given(st.lists(wire_cdr(), min_size=1, max_size=6), st.booleans())
def test_rows_and_violations_are_those_of_cdr_from_pb(msgs: list[mpb.NormalisedCdr], indexed: bool) -> None:
    if not indexed:
        msgs = msgs[:1]
    got_errors, want_errors = ErrorList(), ErrorList()
    got = cdr_rows_from_pb(msgs, "cdrs", got_errors, LIMITS, indexed=indexed)
    want = []
    for i, msg in enumerate(msgs):
        cdr = cdr_from_pb(msg, f"cdrs[{i}]" if indexed else "cdrs", want_errors, LIMITS)
        want.append(row_of(cdr) if cdr is not None else None)
    assert got == want
    assert got_errors.violations == want_errors.violations


def test_a_chunk_without_cdr_ids_gets_the_identities_of_engine_cdr() -> None:
    from engine.cdr import cdr_identity

    msgs = [mpb.NormalisedCdr(source=source, origin_id=f"o-{i}\u00e9", service=1, start_time={"seconds": 1_800_000_000 + i})
            for i, source in enumerate(["sw1", "sw2", "sw1", "sw\u00e92"])]
    rows = cdr_rows_from_pb(msgs, "cdrs", ErrorList())
    assert [r[0] for r in rows] == [cdr_identity(m.source, m.origin_id) for m in msgs]   # type: ignore[index]
    assert [r[5] for r in rows] == ["2027-01-15T08:00:00Z", "2027-01-15T08:00:01Z", "2027-01-15T08:00:02Z",   # type: ignore[index]
                                    "2027-01-15T08:00:03Z"]


# -- the C reader (servers/_wire.c) -----------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire_type) + (varint(len(payload)) + payload if wire_type == 2 else payload)


def timestamp(seconds: int, nanos: int) -> bytes:
    return (field(1, 0, varint(seconds)) if seconds else b"") + (field(2, 0, varint(nanos)) if nanos else b"")


# what a client may append to a CDR's bytes: fields sent twice (the last wins, a timestamp merges), unknown fields of every
# wire type, known fields in a wire type of another kind; protobuf reads them all, the C reader must agree or decline
extra = st.one_of(
    st.builds(lambda s, n: field(6, 2, timestamp(s, n)), st.integers(0, 7_300_000_000), st.integers(-1, 1_000_000_000)),
    st.builds(lambda f, v: field(f, 0, varint(v)), st.sampled_from([4, 5, 10, 11, 12, 13]), st.integers(-2, 2**40)),
    st.builds(lambda f, t: field(f, 2, t.encode()), st.sampled_from([1, 2, 3, 7, 8, 9, 14, 15, 17]), text(16)),
    st.builds(lambda f, v: field(f, 0, varint(v)), st.integers(19, 5000), st.integers(0, 2**64 - 1)),
    st.builds(lambda f, b: field(f, 1, b), st.integers(19, 300), st.binary(min_size=8, max_size=8)),
    st.builds(lambda f, b: field(f, 5, b), st.integers(19, 300), st.binary(min_size=4, max_size=4)),
    st.builds(lambda f, b: field(f, 2, b), st.integers(1, 300), st.binary(max_size=6)),
    st.builds(lambda f, b: field(f, 5, b), st.sampled_from([4, 6, 10, 16]), st.binary(min_size=4, max_size=4)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(wire_cdr(), st.lists(extra, max_size=3)), min_size=1, max_size=6),
       st.lists(extra, max_size=2))
def test_the_c_reader_gives_what_the_python_path_gives(cdrs: list[tuple[mpb.NormalisedCdr, list[bytes]]], around: list[bytes]) -> None:
    """Any request bytes protobuf reads, the C reader reads to the rows and violations the Python path gives."""
    import pytest

    from billing.v1 import rating_pb2 as rpb
    from google.protobuf.message import DecodeError
    from servers import convert

    if convert._wire is None:   # pragma: no cover - a build without a C compiler
        pytest.skip("servers._wire is not built")
    wire = b"".join(field(1, 2, msg.SerializeToString() + b"".join(more)) for msg, more in cdrs) + b"".join(around)
    try:
        request = rpb.RateCdrsRequest.FromString(wire)
    except DecodeError:
        return   # refused as INVALID_ARGUMENT before any servicer runs (servers/interceptors.py)
    msgs = request.cdrs
    got_errors, want_errors = ErrorList(), ErrorList()
    got = cdr_rows_from_pb(msgs, "cdrs", got_errors, LIMITS, wire=wire)
    want = cdr_rows_from_pb(msgs, "cdrs", want_errors, LIMITS)
    assert got == want
    assert got_errors.violations == want_errors.violations
    with collector_paused():   # the rows as the C reader hands them over, before any collection of the young
        fast = convert._wire.cdr_rows(wire, (LIMITS.max_call_seconds, LIMITS.max_volume_bytes, LIMITS.max_events, EARLIEST_EPOCH,
                                             LATEST_EPOCH), convert._SERVICE_VALUES, convert._DIRECTION_VALUES, convert._PER_EVENT)
        # strs, ints and None: out of the cyclic collector's reach from the start (a group's rows outlive its collections)
        assert fast is None or not any(gc.is_tracked(row) for row in fast)
    if fast is not None:   # what it read itself is the Python path's row (cdr_id empty when the CDR has none)
        for msg, row in zip(msgs, fast):
            if row is not None:
                assert row == convert._row_from_pb(msg, "cdrs", ErrorList(), LIMITS)


def test_the_c_reader_declines_what_it_does_not_read() -> None:
    """A charge, attributes or an out-of-bounds value leave the CDR to the Python path (None); a group (wire type 3) the
    whole request; a plain CDR is read."""
    import pytest

    from servers import convert

    if convert._wire is None:   # pragma: no cover - a build without a C compiler
        pytest.skip("servers._wire is not built")
    bounds = (LIMITS.max_call_seconds, LIMITS.max_volume_bytes, LIMITS.max_events, EARLIEST_EPOCH, LATEST_EPOCH)

    def read(*msgs: mpb.NormalisedCdr, tail: bytes = b"") -> object:
        wire = b"".join(field(1, 2, m.SerializeToString()) for m in msgs) + tail
        return convert._wire.cdr_rows(wire, bounds, convert._SERVICE_VALUES, convert._DIRECTION_VALUES, convert._PER_EVENT)

    base = {"source": "sw", "origin_id": "o", "service": 1, "start_time": {"seconds": 1_800_000_000}, "duration_seconds": 60}
    plain = mpb.NormalisedCdr(**base)
    charged = mpb.NormalisedCdr(**base, charge=common_pb2.Money(amount_micros=5, currency="EUR"))
    tagged = mpb.NormalisedCdr(**base, attributes={"k": "v"})
    long_call = mpb.NormalisedCdr(**{**base, "duration_seconds": LIMITS.max_call_seconds + 1})
    rows = read(plain, charged, tagged, long_call)
    assert isinstance(rows, list) and rows[1:] == [None, None, None]
    assert rows[0] == ("", "sw", "o", "voice", "originating", "2027-01-15T08:00:00Z", "", "", "", 60, 0, 0, 0, "", "", None, "", "",
                       "")
    assert read(plain, tail=field(40, 3, b"")) is None


def test_the_c_reader_fills_in_identities_once_per_source() -> None:
    """CDRs without a cdr_id, of sources interleaved, some read by the C reader and one left to the Python path (a
    charge), get engine.cdr's identities; a CDR with one keeps it; ``ids_of`` is asked once per source, and an answer
    that does not fit is an error, not a row without its identity."""
    import pytest

    from billing.v1 import rating_pb2 as rpb
    from engine.cdr import cdr_identity
    from servers import convert

    if convert._wire is None:   # pragma: no cover - a build without a C compiler
        pytest.skip("servers._wire is not built")
    base = {"service": 1, "start_time": {"seconds": 1_800_000_000}, "duration_seconds": 60}
    msgs = [mpb.NormalisedCdr(source=s, origin_id=f"o-{i}", **base) for i, s in enumerate(["sw1", "sw2", "sw1", "sw3", "sw2", "sw1"])]
    msgs.append(mpb.NormalisedCdr(source="sw2", origin_id="o-6", charge=common_pb2.Money(amount_micros=5, currency="EUR"), **base))
    msgs.append(mpb.NormalisedCdr(source="sw3", origin_id="o-7", cdr_id="given", **base))
    wire = rpb.RateCdrsRequest(cdrs=msgs).SerializeToString()
    rows = cdr_rows_from_pb(rpb.RateCdrsRequest.FromString(wire).cdrs, "cdrs", ErrorList(), LIMITS, wire=wire)
    assert [r[0] for r in rows] == [cdr_identity(m.source, m.origin_id) for m in msgs[:-1]] + ["given"]   # type: ignore[index]

    bounds = (LIMITS.max_call_seconds, LIMITS.max_volume_bytes, LIMITS.max_events, EARLIEST_EPOCH, LATEST_EPOCH)
    asked: list[tuple[str, list[str]]] = []

    def ids_of(source: str, origins: list[str]) -> list[str]:
        asked.append((source, origins))
        return [f"{source}/{o}" for o in origins]

    read = convert._wire.cdr_rows(wire, bounds, convert._SERVICE_VALUES, convert._DIRECTION_VALUES, convert._PER_EVENT, ids_of)
    assert read is not None
    assert asked == [("sw1", ["o-0", "o-2", "o-5"]), ("sw2", ["o-1", "o-4"]), ("sw3", ["o-3"])]
    assert [r[0] if r is not None else None for r in read] == ["sw1/o-0", "sw2/o-1", "sw1/o-2", "sw3/o-3", "sw2/o-4", "sw1/o-5", None,
                                                               "given"]
    with pytest.raises(ValueError):
        convert._wire.cdr_rows(wire, bounds, convert._SERVICE_VALUES, convert._DIRECTION_VALUES, convert._PER_EVENT,
                               lambda source, origins: origins[1:])
    with pytest.raises(TypeError):
        convert._wire.cdr_rows(wire, bounds, convert._SERVICE_VALUES, convert._DIRECTION_VALUES, convert._PER_EVENT,
                               lambda source, origins: [1] * len(origins))
