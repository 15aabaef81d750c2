"""samples/ (issue 14, item 4): the committed files are what samples/make_samples.py writes, each switch sample
mediates with its layout and source with every record normalised, and the two TAP files are accepted and refused."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pytest

from clients.commands.mediate import run_mediate
from engine.tap3 import FATAL, decode_file, validate

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def _maker() -> Any:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()


def test_committed_samples_are_what_the_script_writes() -> None:
    expected = MAKER.files()
    shipped = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*") if p.is_file() and p.parent != SAMPLES}
    assert shipped == set(expected), "run: .venv/bin/python samples/make_samples.py"
    for name, data in expected.items():
        assert (SAMPLES / name).read_bytes() == data, f"samples/{name} is stale: run samples/make_samples.py"


def test_every_shipped_layout_has_a_sample() -> None:
    layouts = {p.stem for p in (REPO / "rules" / "mediation").glob("*.yaml")} - {"sources", "tenants"}
    assert set(MAKER.LAYOUTS) == layouts


@pytest.mark.parametrize("layout", sorted(MAKER.LAYOUTS))
def test_each_switch_sample_mediates_completely(layout: str, tmp_path: Path) -> None:
    name, source = MAKER.LAYOUTS[layout]
    out = io.StringIO()
    args = argparse.Namespace(file=str(SAMPLES / layout / name), format=layout, source=source, out=str(tmp_path / "out.cdr.csv"),
                              rejects=str(tmp_path / "rejects.jsonl"), rules=str(REPO / "rules" / "mediation"), chunk_size=1000,
                              json=True, remote=False)
    assert run_mediate(args, out, io.StringIO()) == 0
    summary = json.loads(out.getvalue())["summary"]
    assert summary["records_in"] == summary["normalised"] >= len(MAKER.CALLS)
    rows = (tmp_path / "out.cdr.csv").read_text().splitlines()[1:]
    sample_subscribers = {"33699100001", "33699100002", "33699100005"}
    assert {row.split(",")[6] for row in rows} <= sample_subscribers  # a_number: the bootstrap's sample subscribers


def test_the_tap_samples_are_accepted_and_refused_by_their_audit_totals() -> None:
    good = decode_file((SAMPLES / "tap3" / "roaming.ber").read_bytes())
    assert not [i for i in validate(good) if i.severity == FATAL]
    assert good.transfer_batch is not None and good.transfer_batch.audit is not None
    audit = good.transfer_batch.audit
    assert audit.call_event_details_count == len(good.transfer_batch.events) == 3
    assert audit.total_charge == sum(c.total_charge for e in good.transfer_batch.events for c in e.all_charges())
    refused = decode_file((SAMPLES / "tap3" / "refused.ber").read_bytes())
    fatal = [i for i in validate(refused) if i.severity == FATAL]
    assert [i.code for i in fatal] == ["audit-mismatch"] and "totalCharge" in fatal[0].field


def test_mediate_reports_a_refused_tap_file_at_its_byte_offset(tmp_path: Path) -> None:
    """A binary file has no lines: `rulebill mediate` names the byte `rulebill tap3 decode` names, not "line 0"."""
    refused = decode_file((SAMPLES / "tap3" / "refused.ber").read_bytes())
    offset = next(i.offset for i in validate(refused) if i.severity == FATAL)
    assert offset > 0
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(file=str(SAMPLES / "tap3" / "refused.ber"), format="tap3", source="", out=str(tmp_path / "out.cdr.csv"),
                              rejects=str(tmp_path / "rejects.jsonl"), rules=str(REPO / "rules" / "mediation"), chunk_size=1000,
                              json=False, remote=False)
    assert run_mediate(args, out, err) == 1
    assert f"REFUSED   byte {offset}: audit-mismatch: " in out.getvalue()
    assert err.getvalue().startswith(f"mediate: {SAMPLES / 'tap3' / 'refused.ber'}: byte {offset}: audit-mismatch: ")
    assert json.loads((tmp_path / "rejects.jsonl").read_text().splitlines()[0])["byte_offset"] == offset


def test_the_sample_files_are_of_bootstraps_sample_month() -> None:
    """bootstrap puts the sample plan set in force from SAMPLE_MONTH: the files' calls must fall in it to be rated."""
    from servers.billing_samples import SAMPLE_MONTH

    assert {(when.year, when.month) for _, _, when, _ in MAKER.CALLS} == {(SAMPLE_MONTH.year, SAMPLE_MONTH.month)}
    events = decode_file((SAMPLES / "tap3" / "roaming.ber").read_bytes()).transfer_batch
    assert events is not None and events.audit is not None
    assert {t.local[:6] for t in (events.audit.earliest_call, events.audit.latest_call)} == {f"{SAMPLE_MONTH:%Y%m}"}
