"""Where the voucher domain gets its rules: ``rules/lifecycle/`` via ``engine.eventrules``.

:func:`load_voucher_rules` is what the composition root calls.  The built-in
table below mirrors ``rules/lifecycle/voucher*.yaml`` and stands in only for an
installation that has no ``rules/lifecycle`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from engine.vouchers.lifecycle import Lifecycle
from engine.vouchers.lockout import CountingLockout, LockoutPolicy, RuleBookLockout

# (entity kind, event) -> {from state: to state}
DEFAULT_TRANSITIONS: dict[tuple[str, str], dict[str, str]] = {
    ("voucher", "activate"): {"generated": "active"},
    ("voucher", "block"): {"generated": "blocked", "active": "blocked"},
    ("voucher", "unblock"): {"blocked": "active"},
    ("voucher", "mark_damaged"): {"generated": "damaged", "active": "damaged", "blocked": "damaged"},
    ("voucher", "mark_stolen"): {"generated": "stolen", "active": "stolen", "blocked": "stolen"},
    ("voucher", "expire"): {"generated": "expired", "active": "expired", "blocked": "expired"},
    ("voucher", "purge"): {"used": "purged", "expired": "purged", "damaged": "purged", "stolen": "purged"},
    ("voucher", "redeem"): {"active": "used"},
    ("voucher", "amend"): {"generated": "generated", "active": "active", "blocked": "blocked"},
    ("voucher_batch", "activate"): {"generated": "active"},
    ("voucher_batch", "block"): {"generated": "blocked", "active": "blocked"},
    ("voucher_batch", "unblock"): {"blocked": "active"},
    ("voucher_batch", "expire"): {"generated": "expired", "active": "expired", "blocked": "expired"},
    ("voucher_batch", "purge"): {"expired": "purged", "blocked": "purged"},
}


@dataclass(frozen=True)
class TableDecision:
    allowed: bool
    to_state: str | None
    reason: str = ""


class TableLifecycle:
    def __init__(self, transitions: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> None:
        self.transitions = transitions or DEFAULT_TRANSITIONS

    def decide(self, entity_kind: str, current_state: str, event: str, facts: Mapping[str, Any],
               privileges: Iterable[str] = ()) -> TableDecision:
        if event == "redeem" and (facts.get("batch_state") != "active" or facts.get("expired")):
            return TableDecision(False, None, "the batch must be active and the voucher unexpired")
        if event == "expire" and not facts.get("expired"):
            return TableDecision(False, None, "the expiry date has not passed yet")
        if event in ("activate", "unblock") and facts.get("expired"):
            return TableDecision(False, None, "the expiry date has passed")
        to_state = self.transitions.get((entity_kind, event), {}).get(current_state)
        if to_state is None:
            return TableDecision(False, None, f"{event} is not allowed from {current_state}")
        return TableDecision(True, to_state)


@dataclass(frozen=True)
class VoucherRules:
    lifecycle: Lifecycle
    lockout: LockoutPolicy
    source: str  # "rules" or "built-in table"


def load_voucher_rules(rules_dir: Path) -> VoucherRules:
    """The lifecycles and the lockout rule from ``rules/`` through ``engine.eventrules``.

    Only when ``rules/lifecycle`` does not exist (an installation without rule
    files) the built-in table stands in.  Invalid rule files are an error,
    never silently replaced.
    """
    if not (Path(rules_dir) / "lifecycle").is_dir():
        return VoucherRules(TableLifecycle(), CountingLockout(), "built-in table")
    from engine.eventrules import load_rule_book

    book = load_rule_book(rules_dir)
    return VoucherRules(book.lifecycle(), RuleBookLockout(book.lockout_policy), "rules")
