"""``rulebill plans validate|compile|what-if``: output formats and exit codes."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands import plans as plans_command

REPO = Path(__file__).resolve().parents[3]
NEGATIVE = Path(__file__).parent / "fixtures" / "negative"


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    plans_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out), out.getvalue()


def test_validate_sample_operator_exits_0() -> None:
    code, text = run(["plans", "validate", str(REPO / "plans")])
    assert code == 0
    assert text.startswith("valid:")


def test_validate_invalid_text_lists_file_line_col_code() -> None:
    code, text = run(["plans", "validate", str(NEGATIVE / "time-band-gaps")])
    assert code == 1
    first = text.splitlines()[0]
    assert first.endswith("bands.yaml:1:1: bands.gap: " + first.split("bands.gap: ", 1)[1])


def test_validate_json_format() -> None:
    code, text = run(["plans", "validate", "--format", "json", str(NEGATIVE / "versions-and-ids")])
    assert code == 1
    doc = json.loads(text)
    assert doc["valid"] is False
    assert {p["code"] for p in doc["problems"]} >= {"plans.version-order", "id.duplicate", "plan.unknown-kind"}
    assert all({"file", "line", "col", "code", "message"} <= set(p) for p in doc["problems"])


def test_validate_json_valid() -> None:
    code, text = run(["plans", "validate", "--format", "json", str(REPO / "plans")])
    assert code == 0 and json.loads(text) == {"valid": True, "problems": []}


def test_compile_prints_ir(tmp_path: Path) -> None:
    out = tmp_path / "ir.json"
    code, _ = run(["plans", "compile", str(REPO / "plans"), "--out", str(out)])
    assert code == 0
    ir = json.loads(out.read_text())
    assert ir["format"] == "rulebill.plans.ir/1" and "TP_SMART_S" in ir["tariff_plans"]


def test_compile_invalid_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["plans", "compile", str(NEGATIVE / "time-band-gaps")])
    assert code == 1
    assert "bands.gap" in capsys.readouterr().err


def test_what_if_cli(tmp_path: Path) -> None:
    case = REPO / "tests" / "golden" / "plan-versions"
    code, text = run(["plans", "what-if", "--active", str(case / "plans"), "--candidate", str(case / "plans"),
                      "--cdrs", str(case / "cdrs.cdr.csv"), "--subscribers", str(case / "subscribers.yaml"), "--format", "json"])
    assert code == 0
    doc = json.loads(text)
    assert doc["difference"] == {"EUR": "0.00"}
