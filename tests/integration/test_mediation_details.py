"""``rulebill mediate FILE --remote --rate --details`` (issue 14, item 7): why CDRs were left unrated, counted by
reason and listed, without storing anything more (SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands.mediate import EXIT_OK, run_mediate

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _args(stack, path: Path, **kw) -> argparse.Namespace:  # type: ignore[no-untyped-def]
    return argparse.Namespace(file=str(path), format="asterisk", out=None, rejects=None, rules=None, chunk_size=20_000,
                              json=kw.get("json", False), remote=True, rate=True, details=kw.get("details", False),
                              server=stack.address, token=stack.token("mno"), source="london-pbx")


def test_details_say_why_cdrs_are_unrated(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the asterisk sample with its second call made from a number nobody has
    text = (REPO / "samples" / "asterisk" / "Master.csv").read_text().replace("0033699100002", "0033699999999")
    path = tmp_path / "Master.csv"
    path.write_text(text.replace(".2\",", ".92\","))
    out = io.StringIO()
    assert run_mediate(_args(stack, path), out, io.StringIO()) == EXIT_OK
    first = out.getvalue()
    unrated = int(first.split("rated, ")[1].split(" unrated")[0])
    assert unrated >= 1 and "(--details says why)" in first
    out = io.StringIO()
    assert run_mediate(_args(stack, path, details=True), out, io.StringIO()) == EXIT_OK
    lines = out.getvalue().splitlines()
    by_reason = next(line for line in lines if line.startswith("unrated   "))
    listed = [line for line in lines if line.startswith("  ") and "->" in line]
    assert len(listed) == unrated and sum(int(n) for n in by_reason.split()[2::2]) == unrated
    assert any("33699999999 -> 442079460000" in line for line in listed)
    out = io.StringIO()
    assert run_mediate(_args(stack, path, details=True, json=True), out, io.StringIO()) == EXIT_OK
    payload = json.loads(out.getvalue())
    assert len(payload["unrated"]) == unrated and all(u["reason"] for u in payload["unrated"])
    assert payload["summary"]["already_ingested"] is True   # --details stored nothing new


def test_details_need_rate(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    args = _args(stack, REPO / "samples" / "asterisk" / "Master.csv", details=True)
    args.rate = False
    with pytest.raises(SystemExit, match="--details needs --rate"):
        run_mediate(args, io.StringIO(), io.StringIO())
