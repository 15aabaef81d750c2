"""The compiled rule tables of the sample rules/ are golden artifacts.

A change in rules/ or in the compiler shows up as a readable JSON diff.
Regenerate on purpose with ``RULEBILL_UPDATE_GOLDEN=1 pytest tests/unit/eventrules/test_golden_ir.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.conditions import DurableFields
from engine.eventrules import EventRuleSet, RuleBook

GOLDEN = Path(__file__).parent / "golden"


def artifacts(book: RuleBook) -> dict[str, EventRuleSet]:
    out = {"barring": book.barring_table.ruleset(), "credit_alerts": book.alert_table.ruleset()}
    for model in book.lifecycle_models:
        out[f"lifecycle_{model.entity}"] = model.ruleset()
    out["recharge_lockout"] = book.lockout_policy.ruleset()
    return out


def render(ruleset: EventRuleSet) -> str:
    fields = DurableFields(ruleset.fields())
    doc = {
        "ir": ruleset.to_plain(),
        "durable": {r.id: r.condition.to_durable(fields.key) if r.condition.fields() else {} for r in ruleset.rules},
        "durable_keys": {p: fields.key(p, "*") for p in fields.paths},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", ["barring", "credit_alerts", "lifecycle_voucher", "lifecycle_voucher_batch", "recharge_lockout"])
def test_golden_ir(book: RuleBook, name: str) -> None:
    text = render(artifacts(book)[name])
    path = GOLDEN / f"{name}.json"
    if os.environ.get("RULEBILL_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with RULEBILL_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")
