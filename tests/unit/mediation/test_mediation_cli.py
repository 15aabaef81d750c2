"""``rulebill mediate``: files written, summary printed, exit codes."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands import mediate as command
from engine.cdr import read_cdrs

from .conftest import FIXTURES, RULES


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rulebill")
    command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["mediate", *argv])


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = _parse(*argv)
    return args.func(args, out, err), out.getvalue(), err.getvalue()


def test_mediate_writes_cdrs_rejects_and_prints_the_summary(tmp_path: Path) -> None:
    src = tmp_path / "Master.csv"
    src.write_bytes((FIXTURES / "asterisk_sample.csv").read_bytes())
    code, out, err = _run(str(src), "--format", "asterisk", "--rules", str(RULES))
    assert code == 0, err
    assert "reconciled: 9 = 3 + 3 + 2 + 1 + 0" in out
    cdrs = list(read_cdrs(io.StringIO((tmp_path / "Master.csv.cdr.csv").read_text(encoding="utf-8"))))
    assert len(cdrs) == 3
    rejects = [json.loads(line) for line in (tmp_path / "Master.csv.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["code"]) for r in rejects] == [(9, "value.bad-timestamp"), (10, "record.column-count")]
    code, out, _ = _run(str(src), "--format", "asterisk", "--rules", str(RULES), "--json")
    assert code == 0 and json.loads(out)["summary"]["already_ingested"] is True


def test_explicit_outputs_and_json(tmp_path: Path) -> None:
    out_file, rej_file = tmp_path / "o.cdr.csv", tmp_path / "r.jsonl"
    code, out, _ = _run(str(FIXTURES / "msc_sample.csv"), "--format", "msc_generic", "--rules", str(RULES),
                        "--out", str(out_file), "--rejects", str(rej_file), "--json")
    summary = json.loads(out)["summary"]
    assert code == 0 and (summary["normalised"], summary["aggregated"], summary["rejected_total"]) == (6, 2, 2)
    assert out_file.is_file() and rej_file.is_file()


def test_refused_file_exits_1_with_the_line(tmp_path: Path) -> None:
    code, _, err = _run(str(FIXTURES / "freeswitch_sample.csv"), "--format", "asterisk", "--rules", str(RULES),
                        "--out", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert "freeswitch_sample.csv:1: read.column-count" in err


@pytest.mark.parametrize("argv", [("missing.csv", "--format", "asterisk"), ("__FIXTURE__", "--format", "nope")])
def test_unusable_input_exits_2(tmp_path: Path, argv: tuple[str, ...]) -> None:
    argv = tuple(str(FIXTURES / "asterisk_sample.csv") if a == "__FIXTURE__" else str(tmp_path / a) if a.endswith(".csv") else a for a in argv)
    code, _, err = _run(*argv, "--rules", str(RULES), "--out", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 2 and err


def test_tap3_format_routes_to_the_tap3_decoder(tmp_path: Path, conformance: Path) -> None:
    tap3 = conformance / "tap3"
    if not (tap3 / "tap_notification.ber").is_file():
        pytest.skip("no TAP files in the conformance corpus")
    outputs = ("--out", str(tmp_path / "t.cdr.csv"), "--rejects", str(tmp_path / "t.jsonl"))
    code, out, _ = _run(str(tap3 / "tap_notification.ber"), "--format", "tap3", *outputs, "--json")
    assert code == 0 and json.loads(out)["records_in"] == 0      # a Notification: an empty batch
    code, _, err = _run(str(tap3 / "tap_3_12_trailing_eoc_invalid.ber"), "--format", "tap3", *outputs)
    assert code == 1 and "trailing-bytes" in err
