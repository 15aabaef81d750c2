"""durable_rules operating rules: hash-named rulesets, bounded sessions, errors surfaced."""

from __future__ import annotations

import pytest

from engine.conditions import Comparison
from engine.eventrules import durable_backend
from engine.eventrules.durable_backend import DurableBackend, RuleEngineError
from engine.eventrules.model import EventRule, EventRuleSet

RULES = EventRuleSet("t", "first", (EventRule("BIG", Comparison("n", "gte", 10)), EventRule("ANY", Comparison("n", "exists", True))))


def test_rulesets_are_named_by_content_and_reused() -> None:
    a, b = DurableBackend(RULES), DurableBackend(RULES)
    assert a.ruleset_name == b.ruleset_name
    other = DurableBackend(EventRuleSet("t", "first", (EventRule("BIG", Comparison("n", "gte", 11)),)))
    assert other.ruleset_name != a.ruleset_name
    assert a.matches({"n": 10}) == ("BIG",) and a.matches({"n": 1}) == ("ANY",) and a.matches({}) == ()


def test_session_ids_stay_bounded() -> None:
    backend = DurableBackend(RULES)
    host = durable_backend._host()
    sids = set()
    for i in range(3000):  # more than the ~1,024 live sessions a ruleset tolerates
        backend.matches({"n": i})
        sids.add(host.next_sid)
    assert len(sids) <= 64


def test_action_exception_in_returned_state_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DurableBackend(RULES)
    host = durable_backend._host()

    def failing_post(name: str, message: dict) -> dict:
        host.hits.append("BIG")
        return {"sid": message["sid"], "exception": "exception caught boom"}

    monkeypatch.setattr(host.host, "post", failing_post)
    with pytest.raises(RuleEngineError, match="boom"):
        backend.matches({"n": 1})


def test_no_action_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = DurableBackend(RULES)
    host = durable_backend._host()
    monkeypatch.setattr(host.host, "post", lambda name, message: {"sid": message["sid"]})
    with pytest.raises(RuleEngineError, match="catch-all"):
        backend.matches({"n": 1})


def test_unknown_backend() -> None:
    from engine.eventrules import make_backend

    with pytest.raises(ValueError):
        make_backend(RULES, "drools")
