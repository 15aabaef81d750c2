"""buf lint (STANDARD) and buf breaking against the released billing.v1 image, with the buf pinned in the test lock."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _buf():
    spec = importlib.util.spec_from_file_location("rb_buf", REPO / "protos" / "buf.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_buf_lint_has_no_findings() -> None:
    result = _buf().lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_no_breaking_change_against_the_released_api() -> None:
    result = _buf().breaking()
    assert result.returncode == 0, (
        "billing.v1 changed incompatibly:\n" + result.stdout + result.stderr
        + "\nIf this is deliberate: make proto-baseline REASON=\"...\" (see protos/API-CHANGES.md)")


def test_the_released_image_is_the_documented_one() -> None:
    buf = _buf()
    assert buf.documented_sha256() == buf.image_sha256(), \
        "protos/released/billing-v1.json changed without an entry in protos/API-CHANGES.md (use make proto-baseline)"


def test_breaking_detects_a_renumbered_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is live: renumbering a released field in a copy of protos/ is reported."""
    buf = _buf()
    copy = tmp_path / "protos"
    shutil.copytree(REPO / "protos", copy, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
    proto = copy / "billing" / "v1" / "tenant.proto"
    text = proto.read_text()
    assert "tenant_id = 1;" in text
    proto.write_text(text.replace("tenant_id = 1;", "tenant_id = 99;", 1))
    monkeypatch.setattr(buf, "HERE", copy)
    result = buf.breaking()
    assert result.returncode != 0
    assert "tenant.proto" in result.stdout
