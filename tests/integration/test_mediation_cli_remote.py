"""``rulebill mediate FILE --format NAME --remote``: the file streamed to MediationService (SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands.mediate import EXIT_OK, EXIT_REFUSED, run_mediate
from tests.integration.test_mediation_service import FIXTURES

pytestmark = pytest.mark.integration


def _args(stack, path: Path, fmt: str, **kw) -> argparse.Namespace:  # type: ignore[no-untyped-def]
    return argparse.Namespace(file=str(path), format=fmt, out=None, rejects=None, rules=None, chunk_size=20_000,
                              json=kw.get("json", False), remote=True, rate=kw.get("rate", False),
                              server=stack.address, token=stack.token("mno"), source=kw.get("source", "london-pbx"))


def test_remote_mediation_stores_on_the_server_and_prints_the_summary(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "Master.csv"
    path.write_bytes((FIXTURES / "asterisk_sample.csv").read_bytes() + b"\n\n\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_mediate(_args(stack, path, "asterisk", json=True), out, err) == EXIT_OK
    summary = json.loads(out.getvalue())["summary"]
    assert summary["layout"] == "asterisk" and summary["complete"] is True
    assert int(summary["records_in"]) == int(summary.get("normalised", 0)) + int(summary.get("duplicates", 0)) + sum(
        int(v) for v in summary.get("filtered", {}).values()) + sum(int(v) for v in summary.get("rejected", {}).values())
    assert not list(tmp_path.glob("*.cdr.csv"))   # nothing written locally
    out2 = io.StringIO()
    assert run_mediate(_args(stack, path, "asterisk"), out2, io.StringIO()) == EXIT_OK
    assert "already ingested" in out2.getvalue()


def test_remote_refusal_exits_1_with_the_reason(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "semicolons.csv"
    path.write_text('"a";"b";"c";"d";"e";"f";"g";"h";"i";"j";"k";"l";"m";"n";"o";"p";"q";"r"\n', encoding="utf-8")
    err = io.StringIO()
    assert run_mediate(_args(stack, path, "asterisk"), io.StringIO(), err) == EXIT_REFUSED
    assert "read." in err.getvalue()
