"""The voucher domain's rules: the lifecycles and the recharge lockout of ``rules/lifecycle/``.

There is no built-in copy: a server without its rule files refuses to start,
naming the folder, rather than run on rules nobody wrote down.  The files are
checked for what the voucher code relies on -- a lifecycle for ``voucher`` and
for ``voucher_batch`` whose states the store and the API can represent, and a
``recharge_lockout`` file.  Every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.eventrules import DEFAULT_BACKEND, Lifecycle, LockoutPolicy, load_rule_book
from engine.vouchers.model import BatchState, VoucherState
from engine.vouchers.moves import VOUCHER, VOUCHER_BATCH

LIFECYCLE_FOLDER = "lifecycle"
REQUIRED: dict[str, frozenset[str]] = {VOUCHER: frozenset(s.value for s in VoucherState),
                                       VOUCHER_BATCH: frozenset(s.value for s in BatchState)}


class VoucherRulesMissing(ValueError):
    """The voucher rules are absent or incomplete; the message names the folder and what is missing."""


@dataclass(frozen=True)
class VoucherRules:
    lifecycle: Lifecycle
    lockout: LockoutPolicy
    folder: Path  # where they were read from (logged at start)


def load_voucher_rules(rules_dir: Path | str, backend: str = DEFAULT_BACKEND) -> VoucherRules:
    """The lifecycles and the lockout rule under ``rules_dir/lifecycle``.

    Raises :class:`VoucherRulesMissing` when the folder or a required rule is missing, and
    ``engine.eventrules.RuleFilesInvalid`` (every problem as ``file:line:col``) when a file is invalid.
    """
    folder = Path(rules_dir) / LIFECYCLE_FOLDER
    if not folder.is_dir():
        raise VoucherRulesMissing(f"{folder}: no such folder; the voucher service needs its lifecycle rules there "
                                  "(voucher.yaml, voucher_batch.yaml, recharge_lockout.yaml; see rules/README.md)")
    book = load_rule_book(rules_dir)
    lifecycle = book.lifecycle(backend)
    missing = []
    for entity, known in REQUIRED.items():
        model = lifecycle.models.get(entity)
        if model is None:
            missing.append(f"no lifecycle for entity {entity} (kind: lifecycle, entity: {entity})")
            continue
        unknown = [s for s in model.states if s not in known]
        if unknown:
            missing.append(f"{model.file}: {entity} state(s) {', '.join(unknown)} are not known to the voucher store "
                           f"(known: {', '.join(sorted(known))})")
    if not book.lockout_declared:
        missing.append("no recharge_lockout file (kind: recharge_lockout)")
    if missing:
        raise VoucherRulesMissing(f"{folder}: " + "; ".join(missing))
    return VoucherRules(lifecycle, book.lockout_policy, folder)
