"""Voucher and batch lifecycles from rules/lifecycle, and lifecycle validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import FailedPrecondition, PermissionDenied
from engine.eventrules import RuleBook, load_lifecycle
from engine.eventrules.lifecycle import CONDITION_NOT_MET, INVALID_TRANSITION, PRIVILEGE_REQUIRED, UNKNOWN_ENTITY, UNKNOWN_STATE

from .conftest import RULES, load_text_rules

FRESH = {"expired": False, "batch_state": "active"}

VOUCHER_MOVES = [
    ("generated", "activate", FRESH, "active"),
    ("active", "redeem", FRESH, "used"),
    ("active", "reserve", FRESH, "reserved"),
    ("reserved", "commit", {}, "used"),
    ("reserved", "release", {}, "active"),
    ("reserved", "reservation_timeout", {}, "pending"),
    ("pending", "commit", {}, "used"),
    ("pending", "block", {}, "blocked"),
    ("blocked", "unblock", FRESH, "active"),
    ("active", "expire", {"expired": True}, "expired"),
    ("blocked", "mark_stolen", {}, "stolen"),
    ("active", "mark_damaged", {}, "damaged"),
    ("expired", "purge", {}, "purged"),
    ("blocked", "amend", {}, "blocked"),
]


@pytest.mark.parametrize("state,event,facts,to", VOUCHER_MOVES)
def test_voucher_moves(book: RuleBook, backend: str, state: str, event: str, facts: dict, to: str) -> None:
    d = book.lifecycle(backend).decide("voucher", state, event, facts)
    assert (d.allowed, d.to_state, d.code) == (True, to, "OK")


REFUSALS = [
    ("used", "redeem", FRESH, INVALID_TRANSITION),
    ("purged", "activate", {}, INVALID_TRANSITION),
    ("active", "fly", {}, INVALID_TRANSITION),
    ("active", "redeem", {"expired": True, "batch_state": "active"}, CONDITION_NOT_MET),
    ("active", "redeem", {"expired": False, "batch_state": "blocked"}, CONDITION_NOT_MET),
    ("active", "redeem", {}, CONDITION_NOT_MET),  # facts missing: never allowed by accident
    ("active", "expire", {"expired": False}, CONDITION_NOT_MET),
    ("stolen", "recover", {}, PRIVILEGE_REQUIRED),
]


@pytest.mark.parametrize("state,event,facts,code", REFUSALS)
def test_voucher_refusals(book: RuleBook, backend: str, state: str, event: str, facts: dict, code: str) -> None:
    d = book.lifecycle(backend).decide("voucher", state, event, facts)
    assert (d.allowed, d.to_state, d.code) == (False, None, code)
    assert state in d.reason and event in d.reason


def test_invalid_move_names_the_states(book: RuleBook) -> None:
    d = book.lifecycle().decide("voucher", "used", "block", {})
    assert d.reason == "cannot block a voucher in state used (only from active, generated, pending)"
    with pytest.raises(FailedPrecondition) as err:
        d.raise_if_refused("voucher 000123")
    assert err.value.reason == INVALID_TRANSITION and err.value.subject == "voucher 000123"


def test_privilege(book: RuleBook, backend: str) -> None:
    lc = book.lifecycle(backend)
    with pytest.raises(PermissionDenied):
        lc.decide("voucher", "stolen", "recover", {}).raise_if_refused()
    assert lc.decide("voucher", "stolen", "recover", {}, privileges=["voucher.recover"]).to_state == "blocked"
    assert lc.decide("voucher", "stolen", "recover", {"privileges": ["voucher.recover"]}).to_state == "blocked"
    assert lc.decide("voucher_batch", "expired", "purge", {}, privileges=["voucher.purge"]).to_state == "purged"


def test_batch_moves(book: RuleBook, backend: str) -> None:
    lc = book.lifecycle(backend)
    assert lc.decide("voucher_batch", "generated", "activate", {"expired": False}).to_state == "active"
    assert lc.decide("voucher_batch", "active", "exhaust", {"remaining": 0}).to_state == "exhausted"
    assert lc.decide("voucher_batch", "active", "exhaust", {"remaining": 3}).code == CONDITION_NOT_MET
    assert lc.decide("voucher_batch", "blocked", "unblock", {"expired": False}).to_state == "active"
    assert lc.decide("voucher_batch", "used", "block", {}).code == UNKNOWN_STATE
    assert lc.decide("parcel", "x", "y", {}).code == UNKNOWN_ENTITY


def test_changing_the_yaml_changes_the_rules(tmp_path: Path, backend: str) -> None:
    original = (RULES / "lifecycle" / "voucher.yaml").read_text(encoding="utf-8")
    before = load_lifecycle([RULES / "lifecycle" / "voucher.yaml"], backend)
    assert before.decide("voucher", "damaged", "unblock", {"expired": False}).allowed is False
    # product decides damaged vouchers may be unblocked: a data change only
    changed = original.replace("  - event: unblock\n    from: [blocked]", "  - event: unblock\n    from: [blocked, damaged]")
    assert changed != original
    (tmp_path / "voucher.yaml").write_text(changed, encoding="utf-8")
    after = load_lifecycle([tmp_path / "voucher.yaml"], backend)
    assert after.decide("voucher", "damaged", "unblock", {"expired": False}).to_state == "active"
    assert after.decide("voucher", "damaged", "unblock", {"expired": True}).code == CONDITION_NOT_MET


NEGATIVE = """\
kind: lifecycle
entity: gadget
initial: new
states: [new, live, dead, lost, live]
transitions:
  - {event: start, from: [new], to: live}
  - {event: start, from: [new, dead], to: dead}
  - {event: stop, from: [live], to: gone}
  - {event: stop, from: [limbo], to: dead, when: {x: {lt: 1, gt: 5}}}
  - {event: Bad-Event, from: new, to: live}
  - {event: purge, from: [dead], to: dead, requires_privilege: "Root Access"}
"""


def test_negative_lifecycle(tmp_path: Path) -> None:
    _, problems = load_text_rules(tmp_path, {"neg.yaml": NEGATIVE})
    assert problems == [
        ("neg.yaml", 4, 33, "lifecycle.duplicate-state"),
        ("neg.yaml", 8, 37, "lifecycle.unknown-state"),
        ("neg.yaml", 9, 25, "lifecycle.unknown-state"),
        ("neg.yaml", 10, 13, "lifecycle.bad-event"),
        ("neg.yaml", 11, 64, "lifecycle.bad-privilege"),
    ]


def test_ambiguous_and_unreachable(tmp_path: Path) -> None:
    text = """\
kind: lifecycle
entity: gadget
initial: new
states: [new, live, dead, lost]
transitions:
  - {event: start, from: [new], to: live}
  - {event: start, from: [new, dead], to: dead}
  - {event: stop, from: [live], to: dead}
  - {event: stop, from: [live], to: new, priority: -1}
  - {event: wake, from: [live], to: dead, when: {x: {lt: 1, gt: 5}}}
"""
    _, problems = load_text_rules(tmp_path, {"amb.yaml": text})
    assert problems == [
        ("amb.yaml", 4, 27, "lifecycle.unreachable-state"),  # lost
        ("amb.yaml", 7, 5, "rule.ambiguous"),
        ("amb.yaml", 9, 5, "rule.unreachable"),
        ("amb.yaml", 10, 5, "rule.unreachable"),
    ]
