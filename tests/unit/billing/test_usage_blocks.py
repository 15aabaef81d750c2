"""A bill computed from usage blocks (the bill run's fast path) is the bill computed CDR by CDR, down to the byte of its
UBL document, whenever ``block_fit`` lets a block be used; and the blocks themselves are built in the document's order."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.billing.compute import BillInputError, BillInputs, compute_bill
from engine.billing.cycles import period_closing_on
from engine.billing.model import RatedUsage, SubscriberService
from engine.billing.runs import document_for
from engine.billing.ubl import render_ubl, usage_from_document
from engine.billing import usage_blocks
from engine.billing.usage_blocks import (TAG_CLOSE, TAG_OPEN, TAG_SEP, UsageBlock, block_fit, blocks_from_usage, csv_row, fill_line_ids,
                                          fill_line_ids_py, line_tag, merge_rows)
from tests.ubl_conformance import assert_valid, corpus
from tests.unit.billing.factories import UTC, account, catalogue, profile, service, usage

MARCH = period_closing_on(1, date(2026, 4, 1))
START = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)       # 1 March 00:00 in Paris
END = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)         # 1 April 00:00 in Paris


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    corpus()
    return catalogue(tmp_path_factory.mktemp("cat"))


cdrs = st.lists(st.tuples(
    st.sampled_from(["33612000001", "33612000002", "33612000003"]),
    st.integers(-3 * 86400, 34 * 86400),                     # seconds from 1 March (local), some outside the period
    st.sampled_from([0, 0, 0, 1, 999_999]),                  # microseconds
    st.sampled_from(["voice", "sms", "data"]),
    st.sampled_from(["DST_INTL", "DST_NATIONAL", ""]),
    st.integers(-2_000_000, 5_000_000),
    st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
    st.sampled_from(["TP_COMMIT", "TP_COMMIT", ""]),
), max_size=40)


def _usage(rows: list[tuple[str, int, int, str, str, int, str, str]], clean: bool = False) -> list[RatedUsage]:
    if clean:   # half the examples: CDRs blocks fit (inside the period, priced in EUR on a named plan), on one to three numbers
        rows = [(m, s % (30 * 86400), us, svc, dest, charge, "EUR", "TP_COMMIT") for m, s, us, svc, dest, charge, _c, _p in rows]
    return [RatedUsage(f"{'aB_-'[i % 4]}c{i:04d}", m, START + timedelta(seconds=s, microseconds=us), svc, dest, charge, cur, plan, 1, i)
            for i, (m, s, us, svc, dest, charge, cur, plan) in enumerate(rows)]


def _services(mid_period: bool, two: bool, three: bool = False, renumbered: bool = False) -> tuple[SubscriberService, ...]:
    first = service("33612000001")
    if mid_period:
        first = replace(first, assigned_from=date(2026, 3, 10))
    out = (first, service("33612000002")) if two else (first,)
    if three:
        # the third number: its own subscriber, or the first subscriber's new number (one who changed numbers)
        third = service("33612000003", sid="sub-33612000001" if renumbered else "")
        out += (third,)
    return out


def _slow_and_fast(cat, services, used):  # type: ignore[no-untyped-def]
    acc, prof = account(), profile()
    numbers = {s.msisdn for s in services}
    blocks = tuple(b for b in blocks_from_usage(used) if b.msisdn in numbers)
    fit = block_fit(blocks, services, acc_tz(acc), acc.currency, END)
    slow: object
    try:
        slow = compute_bill(BillInputs(acc, MARCH, services, [u for u in used if u.msisdn in numbers]), cat, prof, date(2026, 4, 1))
    except BillInputError as exc:
        slow = exc.message
    if not fit.fits:
        return slow, None, prof
    fast: object
    try:
        fast = compute_bill(BillInputs(acc, MARCH, services, (), usage_blocks=blocks), cat, prof, date(2026, 4, 1))
    except BillInputError as exc:
        fast = exc.message
    return slow, fast, prof


def acc_tz(acc):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(acc.time_zone)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=cdrs, mid_period=st.booleans(), two=st.booleans(), three=st.booleans(), renumbered=st.booleans(), clean=st.booleans())
def test_a_bill_from_blocks_is_the_bill_from_cdrs_byte_for_byte(cat, rows, mid_period, two, three, renumbered,  # type: ignore[no-untyped-def]
                                                                 clean) -> None:
    services = _services(mid_period and not clean, two, three, renumbered)
    used = _usage(rows, clean)
    slow, fast, prof = _slow_and_fast(cat, services, used)
    if fast is None:
        return                                           # the bill run reads this account CDR by CDR
    if isinstance(slow, str):
        assert fast == slow
        return
    assert not isinstance(fast, str)
    assert (fast.lines, fast.adjustments, fast.taxes, fast.totals) == (slow.lines, slow.adjustments, slow.taxes, slow.totals)
    if slow.empty:
        return
    assert render_ubl(document_for(fast, "INV-1", prof)) == render_ubl(document_for(slow, "INV-1", prof))
    if not slow.usage:
        assert fast.usage_detail is None
        return
    assert fast.usage_detail is not None and fast.usage_detail.cdrs == len(slow.usage)
    frozen = [row for f in fast.usage_detail.frozen for row in f]  # type: ignore[attr-defined]
    assert sorted(frozen) == sorted((u.cdr_id, u.charge_micros) for u in slow.usage)


def test_blocks_fit_only_when_they_cannot_change_the_bill(cat) -> None:  # type: ignore[no-untyped-def]
    tz = acc_tz(account())
    one = (service("33612000001"),)
    inside = usage(5)
    assert block_fit(tuple(blocks_from_usage(inside)), one, tz, "EUR", END).owners == {"33612000001": one[0]}
    assert block_fit((), one, tz, "EUR", END).fits
    late = inside + [inside[0]._replace(cdr_id="late", start_time=END)]
    assert not block_fit(tuple(blocks_from_usage(late)), one, tz, "EUR", END).fits
    unnamed = [u._replace(tariff_plan="") for u in inside]
    assert not block_fit(tuple(blocks_from_usage(unnamed)), one, tz, "EUR", END).fits
    dollars = [inside[0]._replace(currency="USD")]
    assert not block_fit(tuple(blocks_from_usage(dollars)), one, tz, "EUR", END).fits
    later = (replace(one[0], assigned_from=date(2026, 3, 6)),)
    assert not block_fit(tuple(blocks_from_usage(inside)), later, tz, "EUR", END).fits
    two_numbers = inside + usage(3, msisdn="33612000002")
    fit = block_fit(tuple(blocks_from_usage(two_numbers)), one + (service("33612000002"),), tz, "EUR", END)
    assert fit.fits and fit.owners["33612000002"].subscriber_id == "sub-33612000002"
    renumbered = one + (service("33612000002", sid="sub-33612000001"),)     # one subscriber, two numbers: CDR by CDR
    assert not block_fit(tuple(blocks_from_usage(two_numbers)), renumbered, tz, "EUR", END).fits
    handed_on = one + (replace(service("33612000001", sid="sub-new"), assigned_from=date(2026, 3, 20)),)
    assert not block_fit(tuple(blocks_from_usage(inside)), handed_on, tz, "EUR", END).fits


def test_a_document_from_a_block_is_valid_and_gives_back_its_cdrs(cat) -> None:  # type: ignore[no-untyped-def]
    used = usage(12) + usage(4, destination="DST_NATIONAL", service_name="sms", charge=-250_000, day=9)
    acc, prof = account(), profile()
    bill = compute_bill(BillInputs(acc, MARCH, (service(),), (), usage_blocks=tuple(blocks_from_usage(used))), cat, prof,
                        date(2026, 4, 1))
    xml = render_ubl(document_for(bill, "INV-1", prof))
    assert_valid(xml)
    back, line_ids = usage_from_document(xml)
    assert sorted(u.cdr_id for u in back) == sorted(u.cdr_id for u in used)
    by_line: dict[str, int] = {}
    for u, line_id in zip(back, line_ids):
        by_line[line_id] = by_line.get(line_id, 0) + u.charge_micros
    assert {ln.line_id: ln.exact_micros for ln in bill.lines if ln.exact_micros is not None and ln.line_id in by_line} == by_line


def test_rows_are_in_start_time_then_id_order_and_every_tag_is_filled() -> None:
    used = usage(3)
    same = used[0]._replace(cdr_id="A0")                    # same start as c00100000: "A0" sorts first
    (block,) = blocks_from_usage([used[2], used[1], used[0], same])
    assert block.rows == "".join(csv_row(u, line_tag(u.tariff_plan, u.service, u.destination)) for u in [same, used[0], used[1], used[2]])
    assert fill_line_ids(block.rows, {("TP_COMMIT", "voice", "DST_INTL"): "7"}).startswith("7,A0,")
    with pytest.raises(ValueError):
        fill_line_ids(block.rows, {})
    with pytest.raises(ValueError):                         # a tag left open is refused, not shifted into the text
        fill_line_ids(block.rows.replace(TAG_CLOSE, ",", 1), {("TP_COMMIT", "voice", "DST_INTL"): "7"})
    assert isinstance(block, UsageBlock) and block.groups[0].cdrs == 4


# tags of the same length among them (a lookup by length alone must fail), one not ASCII, one empty
_TAGS = [("TP_COMMIT", "voice", "DST_INTL"), ("TP_COMMIT", "voice", "DST_INTX"), ("TP_COMMIT", "sms", ""), ("TPé", "data", "DST_NATIONAL"),
         ("", "", "")]


_TEXT = st.text(st.characters(blacklist_characters=TAG_OPEN + TAG_CLOSE), max_size=30)   # between tags: any UTF-8 but the marks


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*_TAGS, ("TP_X", "voice", "")]), _TEXT), max_size=20),   # rows: a tag (one unknown), text
       st.dictionaries(st.sampled_from(_TAGS), st.sampled_from(["1", "12", "é3"]), max_size=5),
       st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.sampled_from([TAG_OPEN, TAG_CLOSE]))))   # a stray mark, or none
def test_the_c_fill_of_line_ids_gives_the_python_text_or_its_error(rows_of: list[tuple[tuple[str, str, str], str]],
                                                                    ids: dict[tuple[str, str, str], str], stray: tuple[int, str] | None) -> None:
    """_usagecsv.fill_tags (one pass in C) against the split in Python it replaced: the same text, or the same error."""
    assert usage_blocks._fill_tags is not None, "engine/billing/_usagecsv.c was not built: run `make test` (pip install -e .)"
    rows = "".join(line_tag(*tag) + text for tag, text in rows_of)
    if stray is not None:
        at = stray[0] % (len(rows) + 1)
        rows = rows[:at] + stray[1] + rows[at:]
    try:
        expected: object = fill_line_ids_py(rows, ids)
    except ValueError as exc:
        expected = ValueError(str(exc))
    try:
        got: object = fill_line_ids(rows, ids)
    except ValueError as exc:
        got = ValueError(str(exc))
    assert type(got) is type(expected) and str(got) == str(expected)


def test_a_start_time_in_another_zone_is_written_in_utc() -> None:
    from zoneinfo import ZoneInfo

    u = usage(1)[0]
    paris = u._replace(start_time=u.start_time.astimezone(ZoneInfo("Europe/Paris")))
    assert csv_row(paris, "1") == csv_row(u, "1")
    assert "+00:00" in csv_row(u, "1")


def test_several_numbers_rows_merge_by_start_instant_then_cdr_id() -> None:
    one, two = usage(2), usage(2, msisdn="33612000002")
    whole = one[0]._replace(cdr_id="z1")                                       # 10:00:00 sharp
    fraction = two[0]._replace(cdr_id="a2", start_time=whole.start_time + timedelta(microseconds=1))
    same = two[1]._replace(cdr_id="b2", start_time=whole.start_time)           # same instant: "b2" < "z1"
    blocks = blocks_from_usage([whole, one[1], fraction, same])
    ids = {("TP_COMMIT", "voice", "DST_INTL"): "1"}
    merged = merge_rows([fill_line_ids(b.rows, ids) for b in blocks])
    assert [row.split(",")[1] for row in merged.splitlines()] == ["b2", "z1", "a2", one[1].cdr_id]
    assert merge_rows([blocks[0].rows]) == blocks[0].rows
