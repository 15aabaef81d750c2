"""Stateful event rules: barring, credit alerts, lifecycles and the recharge lockout.

One rule language (engine.conditions), two backends behind one adapter:
``compiled`` (conditions compiled to Python closures, the default) and
``durable_rules`` (durable_rules rulesets; no state is kept between events, the
database stays the truth).  The ``event_rules_backend`` setting picks one for the
server (servers/root.py).  Inputs and outputs are plain frozen
dataclasses so gRPC servicers translate them field by field.
"""

from engine.eventrules.adapter import BACKENDS, DEFAULT_BACKEND, make_backend
from engine.eventrules.alerts import AlertAction, CreditAlerts, CreditFact
from engine.eventrules.barring import Barring, BarringDecision, CallAttempt
from engine.eventrules.lifecycle import Lifecycle, TransitionDecision
from engine.eventrules.loader import (
    EVENT_RULE_DIRS,
    RULE_KINDS,
    RuleBook,
    RuleFilesInvalid,
    load_lifecycle,
    load_rule_book,
    load_rules,
)
from engine.eventrules.lockout import DEFAULT_LOCKOUT, LockoutDecision, LockoutPolicy, decide_recharge_lockout
from engine.eventrules.model import EventRule, EventRuleSet

__all__ = [
    "AlertAction",
    "BACKENDS",
    "Barring",
    "BarringDecision",
    "CallAttempt",
    "CreditAlerts",
    "CreditFact",
    "DEFAULT_BACKEND",
    "DEFAULT_LOCKOUT",
    "EVENT_RULE_DIRS",
    "EventRule",
    "EventRuleSet",
    "Lifecycle",
    "LockoutDecision",
    "LockoutPolicy",
    "RULE_KINDS",
    "RuleBook",
    "RuleFilesInvalid",
    "TransitionDecision",
    "decide_recharge_lockout",
    "load_lifecycle",
    "load_rule_book",
    "load_rules",
    "make_backend",
]
