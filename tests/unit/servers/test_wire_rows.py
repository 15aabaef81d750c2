"""RatingService reads a chunk's wire CDRs straight into evaluator rows (servers.convert.cdr_rows_from_pb): every CDR
gives the row, or the field violations, that cdr_from_pb + row_of give it (hypothesis over valid and damaged CDRs)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from engine.errors import ErrorList
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
