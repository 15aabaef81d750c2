"""`rulebill plans validate` on rule files, mediation layouts and voucher profiles, with cross-references to plans/."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands.plans import run_validate

REPO = Path(__file__).resolve().parents[3]

BAD_BARRING = """\
kind: barring
rules:
  - id: BAR_NOWHERE
    priority: 500
    action: bar
    when: {destination_group: DST_NOWHERE, plan_id: TP_NOPE}
  - id: BAR_GAMMA
    priority: 501
    action: bar
    when: {tenant: mvno-gamma, roaming: true}
"""

BAD_ALERTS = """\
kind: credit_alerts
thresholds:
  - id: T_50
    percent: 50
    actions:
      - type: message
        channel: sms
        text: "used {usage}"
"""


def validate(*paths: str, fmt: str = "text") -> tuple[int, str]:
    out = io.StringIO()
    code = run_validate(argparse.Namespace(paths=list(paths), format=fmt), out)
    return code, out.getvalue()


@pytest.fixture
def bad_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rules" / "barring").mkdir(parents=True)
    (tmp_path / "rules" / "alerts").mkdir()
    (tmp_path / "rules" / "barring" / "BAD.yaml").write_text(BAD_BARRING)
    (tmp_path / "rules" / "alerts" / "BAD.yaml").write_text(BAD_ALERTS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_shipped_rules_and_plans_are_valid_together() -> None:
    code, text = validate(str(REPO / "plans"), str(REPO / "rules"))
    assert code == 0, text
    assert "barring rules" in text and "voucher profiles" in text and "mediation" in text
    for sub in ("rules/barring", "rules/alerts", "rules/lifecycle", "rules/mediation", "plans/vouchers",
                "rules/barring/BAR_STAFF_FLAGS.yaml"):
        code, text = validate(str(REPO / sub))
        assert code == 0, (sub, text)


def test_rule_problems_and_dangling_references_are_pinned(bad_rules: Path) -> None:
    code, text = validate(str(REPO / "plans"), "rules", fmt="json")
    assert code == 1
    report = json.loads(text)
    assert report["valid"] is False
    assert [(p["file"], p["line"], p["col"], p["code"]) for p in report["problems"]] == [
        ("rules/alerts/BAD.yaml", 8, 15, "alert.unknown-placeholder"),
        ("rules/barring/BAD.yaml", 3, 5, "rule.unknown-destination-group"),
        ("rules/barring/BAD.yaml", 3, 5, "rule.unknown-plan"),
        ("rules/barring/BAD.yaml", 7, 5, "rule.unknown-tenant"),
    ]
    code, text = validate(str(REPO / "plans"), "rules")
    lines = text.splitlines()
    assert code == 1 and lines[0].startswith("rules/alerts/BAD.yaml:8:15: alert.unknown-placeholder: ")
    assert lines[-1] == "4 problem(s) in 2 file(s)"


def test_rules_alone_skip_cross_references(bad_rules: Path) -> None:
    code, text = validate("rules", fmt="json")
    assert code == 1
    assert [p["code"] for p in json.loads(text)["problems"]] == ["alert.unknown-placeholder"]
    code, text = validate("rules/barring")
    assert code == 0, text


def test_mediation_layouts_and_voucher_profiles_are_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules" / "mediation").mkdir(parents=True)
    (tmp_path / "rules" / "mediation" / "broken.yaml").write_text("name: broken\nbogus_field: 1\n")
    (tmp_path / "plans" / "vouchers").mkdir(parents=True)
    (tmp_path / "plans" / "vouchers" / "x.yaml").write_text("bogus: 1\n")
    monkeypatch.chdir(tmp_path)
    code, text = validate("rules/mediation", fmt="json")
    problems = json.loads(text)["problems"]
    assert code == 1 and problems and {p["file"] for p in problems} == {"rules/mediation/broken.yaml"}
    assert ("rules/mediation/broken.yaml", 2, 1, "schema.unknown-field") in {(p["file"], p["line"], p["col"], p["code"]) for p in problems}
    code, text = validate("plans/vouchers", fmt="json")
    problems = json.loads(text)["problems"]
    assert code == 1
    assert ("plans/vouchers/x.yaml", 1, 1, "schema.unknown-field") in {(p["file"], p["line"], p["col"], p["code"]) for p in problems}
