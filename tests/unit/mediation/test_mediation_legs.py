"""Calls billed once: leg rules (engine.mediation.legs) and their place in the pipeline."""

from __future__ import annotations

import pytest

from engine.mediation import LayoutError, Mediator, MemoryMediationStore, load_layout_text, row_to_cdr
from engine.mediation.legs import LegPairer
from engine.mediation.memory import SimulatedCrash
from engine.mediation.ports import PendingRecord

from .conftest import layout, mediate
from .golden import GOLDEN


def _held(n: int) -> PendingRecord:
    return PendingRecord(n, n, n, n * 10, f"r{n}".encode())


def test_pairs_are_found_in_either_order_and_the_naming_leg_is_billed() -> None:
    pairer = LegPairer(within=10)
    assert pairer.add("b1", "", ("B",), _held(1)) == []            # a B-leg first: held
    out = pairer.add("a1", "b1", ("A",), _held(2))                 # its A-leg names it
    assert [(o.kind, o.row) for o in out] == [("cdr", ("A",)), ("leg", ("B",))]
    assert pairer.add("a2", "b2", ("A2",), _held(3)) == []
    assert [(o.kind, o.row) for o in pairer.add("b2", "", ("B2",), _held(4))] == [("cdr", ("A2",)), ("leg", ("B2",))]
    assert pairer.held == {} and pairer.by_leg == {} and pairer.by_other == {}


def test_a_leg_nobody_names_within_the_window_is_a_call_of_one_leg() -> None:
    pairer = LegPairer(within=2)
    pairer.add("lone", "", ("L",), _held(1))
    assert pairer.add("x", "", ("X",), _held(3)) == []
    assert [(o.kind, o.row) for o in pairer.add("y", "", ("Y",), _held(4))] == [("cdr", ("L",))]
    assert [o.row for o in pairer.drain()] == [("X",), ("Y",)]


def test_two_legs_naming_each_other_leave_no_billable_leg() -> None:
    pairer = LegPairer(within=10)
    pairer.add("a", "b", ("A",), _held(1))
    out = pairer.add("b", "a", ("B",), _held(2))
    assert [(o.kind, o.record.record_no) for o in out] == [("ambiguous", 1), ("ambiguous", 2)]
    assert "name each other" in out[0].reason


def _legs_ab() -> bytes:
    return (GOLDEN / "freeswitch-legs-ab" / "Master.csv").read_bytes()


def test_without_the_leg_rule_both_legs_were_billed() -> None:
    """What the leg rule prevents: the same file with the rule taken out bills 3 calls as 7 CDRs."""
    from .conftest import RULES, source

    text = (RULES / "freeswitch.yaml").read_text(encoding="utf-8")
    text = text.replace("legs:\n  pair: {leg: uuid, other_leg: bleg_uuid}\n  within: 1000\n", "")
    naive = load_layout_text(text, "freeswitch").bind(source("freeswitch"))
    assert mediate(naive, _legs_ab())[0].normalised == 7
    assert mediate(layout("freeswitch"), _legs_ab())[0].normalised == 3


@pytest.mark.parametrize("crash_at", range(1, 8))
def test_legs_held_at_a_crash_are_replayed_and_the_result_is_one_clean_runs(crash_at: int) -> None:
    clean_summary, clean = mediate(layout("freeswitch"), _legs_ab(), chunk_size=1, block_size=1024)
    store = MemoryMediationStore(fail_after_commits=crash_at)
    mediator = Mediator(layout("freeswitch"), store, store, chunk_size=1, block_size=1024)
    with pytest.raises(SimulatedCrash):
        mediator.mediate_bytes(_legs_ab())
    store.fail_after_commits = None
    summary = mediator.mediate_bytes(_legs_ab())
    assert summary.as_dict() == clean_summary.as_dict()
    assert list(store.cdrs) == list(clean.cdrs)
    assert [(r.record_no, r.code) for r in store.rejects] == [(r.record_no, r.code) for r in clean.rejects]


def test_the_asterisk_leg_rule_counts_local_channel_halves_as_legs() -> None:
    row = ('"a","07700900123","600","ctx","clid","{chan}","SIP/agent-1","Dial","x",'
           '"2026-11-27 10:00:00","2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","{uid}",""\n')
    data = (row.format(chan="SIP/carol-1", uid="u1") + row.format(chan="Local/600@q-1;2", uid="u2")
            + row.format(chan="Local/600@q-2;1", uid="u3")).encode()
    for block_size in (1 << 20, 64):
        summary, store = mediate("asterisk", data, block_size=block_size)
        assert (summary.normalised, summary.non_billable_legs, summary.filtered) == (1, 2, {})
        assert [row_to_cdr(r).origin_id for r in store.cdrs.values()] == ["u1"]


@pytest.mark.parametrize("legs, code", [
    ("legs: {billable: {column: channel, not_matches: '^Local/'}, pair: {leg: uuid, other_leg: bleg}}", "layout.legs-kind"),
    ("legs: {pair: {leg: nope, other_leg: bleg}}", "layout.unknown-column"),
    ("legs: {billable: {column: channel, below: 3}}", "schema.unknown-field"),
    ("legs: {pair: {leg: uuid, other_leg: bleg}, within: 0}", "layout.bad-limit"),
])
def test_bad_leg_rules_are_reported_with_their_place(legs: str, code: str) -> None:
    text = ("columns: [uuid, bleg, channel, start]\nidentity: [uuid]\n" + legs +
            "\nfields:\n  service: {value: voice}\n  start_time: {column: start, convert: epoch}\n")
    with pytest.raises(LayoutError) as info:
        load_layout_text(text, "x", "x.yaml")
    assert code in [p.code for p in info.value.problems]
