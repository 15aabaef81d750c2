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
    code, out, err = _run(str(src), "--format", "asterisk", "--source", "london-pbx", "--rules", str(RULES))
    assert code == 0, err
    assert "reconciled: 9 = 3 + 3 + 2 + 1 + 0 + 0" in out
    cdrs = list(read_cdrs(io.StringIO((tmp_path / "Master.csv.cdr.csv").read_text(encoding="utf-8"))))
    assert len(cdrs) == 3
    rejects = [json.loads(line) for line in (tmp_path / "Master.csv.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["code"]) for r in rejects] == [(9, "value.bad-timestamp"), (10, "record.column-count")]
    code, out, _ = _run(str(src), "--format", "asterisk", "--source", "london-pbx", "--rules", str(RULES), "--json")
    assert code == 0 and json.loads(out)["summary"]["already_ingested"] is True


def test_a_finished_file_whose_outputs_were_deleted_is_written_again_never_claimed(tmp_path: Path) -> None:
    """Regression (issue 13, item 17): the checkpoint of an earlier run does not win over reality."""
    src = tmp_path / "Master.csv"
    src.write_bytes((FIXTURES / "asterisk_sample.csv").read_bytes())
    argv = (str(src), "--format", "asterisk", "--source", "london-pbx", "--rules", str(RULES))
    out_file, rejects_file = tmp_path / "Master.csv.cdr.csv", tmp_path / "Master.csv.rejects.jsonl"
    assert _run(*argv)[0] == 0
    first = out_file.read_bytes(), rejects_file.read_bytes()
    code, out, _ = _run(*argv)
    assert code == 0 and "already mediated, outputs at" in out and "wrote" not in out
    out_file.unlink()
    rejects_file.unlink()
    code, out, _ = _run(*argv)
    assert code == 0 and "mediated again" in out and f"wrote {out_file} (3 CDRs)" in out
    assert (out_file.read_bytes(), rejects_file.read_bytes()) == first
    out_file.write_text("cdr_id\n")   # changed since: written again too
    code, out, _ = _run(*argv)
    assert "mediated again" in out and out_file.read_bytes() == first[0]


def test_the_same_file_with_another_layout_or_source_is_another_mediation(tmp_path: Path) -> None:
    """Regression (issue 13, item 15): a file refused for a wrong layout can be sent again with the right one."""
    src = tmp_path / "Master.csv"
    src.write_bytes((FIXTURES / "asterisk_sample.csv").read_bytes())
    outputs = ("--rules", str(RULES), "--out", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "r.jsonl"))
    code, _, err = _run(str(src), "--format", "freeswitch", "--source", "madrid-freeswitch", *outputs)
    assert code == 1 and "read.column-count" in err
    code, out, err = _run(str(src), "--format", "asterisk", "--source", "london-pbx", *outputs, "--json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert (summary["normalised"], summary["already_ingested"], summary["layout"]) == (3, False, "asterisk")


def test_a_layout_that_needs_a_source_refuses_a_file_without_one_and_says_why(tmp_path: Path) -> None:
    outputs = ("--rules", str(RULES), "--out", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "r.jsonl"))
    code, _, err = _run(str(FIXTURES / "asterisk_sample.csv"), "--format", "asterisk", *outputs)
    assert code == 1 and "source.required" in err
    (line,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert (line["level"], line["code"]) == ("file", "source.required")
    code, _, err = _run(str(FIXTURES / "asterisk_sample.csv"), "--format", "asterisk", "--source", "atlantis", *outputs)
    assert code == 1 and "source.unknown" in err and "'atlantis'" in err


def test_explicit_outputs_and_json(tmp_path: Path) -> None:
    out_file, rej_file = tmp_path / "o.cdr.csv", tmp_path / "r.jsonl"
    code, out, _ = _run(str(FIXTURES / "msc_sample.csv"), "--format", "msc_generic", "--rules", str(RULES),
                        "--out", str(out_file), "--rejects", str(rej_file), "--json")
    summary = json.loads(out)["summary"]
    assert code == 0 and (summary["normalised"], summary["aggregated"], summary["rejected_total"]) == (6, 2, 2)
    assert out_file.is_file() and rej_file.is_file()


def test_refused_file_exits_1_with_the_line(tmp_path: Path) -> None:
    code, _, err = _run(str(FIXTURES / "freeswitch_sample.csv"), "--format", "asterisk", "--source", "london-pbx", "--rules", str(RULES),
                        "--out", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "r.jsonl"))
    assert code == 1
    assert "freeswitch_sample.csv:1: read.column-count" in err
    (line,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]   # why, for a pipeline
    assert (line["level"], line["code"], line["line"]) == ("file", "read.column-count", 1)


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
    assert code == 0 and json.loads(out)["summary"]["records_in"] == 0      # a Notification: an empty batch
    code, out, err = _run(str(tap3 / "tap_3_12_trailing_eoc_invalid.ber"), "--format", "tap3", *outputs, "--json")
    assert code == 1 and "trailing-bytes" in err
    summary = json.loads(out)["summary"]      # the same shape as a CSV layout's, refused
    assert summary["file_error"]["code"] == "trailing-bytes" and (summary["records_in"], summary["duplicates"], summary["filtered"]) == (0, 0, {})


def test_a_tap_file_refused_by_clearing_validation_still_writes_its_rejects_file(tmp_path: Path, conformance: Path) -> None:
    """Regression (issue 9, item 6): the file-level reasons, machine-readable, without reading stderr."""
    refused = conformance / "tap3" / "tap_3_12_valid.ber"   # its audit block does not match its events
    if not refused.is_file():
        pytest.skip("no TAP files in the conformance corpus")
    rejects = tmp_path / "t.jsonl"
    code, out, err = _run(str(refused), "--format", "tap3", "--rules", str(RULES), "--out", str(tmp_path / "t.cdr.csv"),
                          "--rejects", str(rejects), "--json")
    assert code == 1
    lines = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert lines and all(line["level"] == "file" for line in lines)
    assert json.loads(out)["summary"]["file_error"]["code"] == lines[0]["code"] == "audit-mismatch"


def test_a_local_tap3_file_beyond_max_tap3_bytes_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local CLI holds a TAP file to the server's bound (setting max_tap3_bytes): a TAP file is decoded whole in
    memory, so a larger one is refused unread, nothing written."""
    monkeypatch.setenv("RULEBILL_MAX_TAP3_BYTES", "1000")
    outputs = ("--out", str(tmp_path / "t.cdr.csv"), "--rejects", str(tmp_path / "t.jsonl"))
    big = tmp_path / "big.ber"
    big.write_bytes(b"\x61" + b"\x00" * 1000)
    code, out, err = _run(str(big), "--format", "tap3", *outputs)
    assert code == 1 and out == ""
    assert "1,001 bytes, more than the 1,000 of the setting max_tap3_bytes" in err and "nothing was written" in err
    assert not (tmp_path / "t.cdr.csv").exists() and not (tmp_path / "t.jsonl").exists()
    at_bound = tmp_path / "at.ber"
    at_bound.write_bytes(b"\x61" + b"\x00" * 999)
    code, _, err = _run(str(at_bound), "--format", "tap3", *outputs)
    assert "max_tap3_bytes" not in err   # read and decoded (and refused by the decoder: it is no TAP file)
