"""``rulebill tap3 decode``: output, exit codes and one-line reasons."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from clients.commands import tap3 as command
from tests import tap3_writer as W


def run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="rulebill")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.ber"
    path.write_bytes(W.transfer_batch([W.mo_call("262011234567890", "4917012", "4930", "20240105101500", 60, 990)]))
    return path


def test_accepted_file_prints_structure(good_file: Path) -> None:
    code, out, err = run(["tap3", "decode", str(good_file)])
    assert code == 0 and err == ""
    assert "TransferBatch DEUXX -> GBRYY seq 00001 TAP 3.12" in out
    assert "mobileOriginatedCall 2024-01-05T09:15:00Z" in out
    assert "cdrs: 1 normalised, 0 record(s) rejected" in out


def test_json_output(good_file: Path) -> None:
    code, out, _ = run(["tap3", "decode", "--json", str(good_file)])
    payload = json.loads(out)
    assert code == 0 and payload["accepted"] is True and payload["cdr_count"] == 1
    assert payload["document"]["transferBatch"]["events"][0]["imsi"] == "262011234567890"


def test_audit_mismatch_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ber"
    path.write_bytes(W.transfer_batch([W.mo_call("262011234567890", "4917012", "4930", "20240105101500", 60, 990)],
                                      total_charge=1))
    code, _, err = run(["tap3", "decode", str(path)])
    assert code == 1
    assert err.count("\n") == 1 and "refused" in err and "auditControlInfo.totalCharge" in err
    code, _, _ = run(["tap3", "decode", "--structure-only", str(path)])
    assert code == 0


def test_undecodable_file_gives_offset(tmp_path: Path) -> None:
    path = tmp_path / "junk.ber"
    data = W.transfer_batch([])
    path.write_bytes(data + b"\x00\x00")
    code, out, err = run(["tap3", "decode", str(path)])
    assert code == 1 and out == ""
    assert err.strip() == f"tap3: {path}: refused: byte {len(data)}: trailing-bytes: 2 byte(s) after the end of the outer element"
    code, out, _ = run(["tap3", "decode", "--json", str(path)])
    assert code == 1 and json.loads(out)["error"] == {"code": "trailing-bytes", "offset": len(data),
                                                      "message": "2 byte(s) after the end of the outer element",
                                                      "path": ""}


def test_unreadable_file(tmp_path: Path) -> None:
    code, _, err = run(["tap3", "decode", str(tmp_path / "missing.ber")])
    assert code == 2 and "cannot read" in err
