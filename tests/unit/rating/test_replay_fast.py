"""`rulebill replay` writes each CDR's expected line from what the batch loops answered (engine.replay.LineWriter, in C)
and prices again only the CDRs that differ: the same ReplayResult as pricing every CDR again (Evaluator.detail, the
way replay compared before), on generated cases built from the golden folders' plan sets, subscribers and barring
rules -- calls across band changes, bundles paying all or part, discounts, rejected and barred rows -- with
expected files mutated (a changed charge, a re-formatted or blank line, a line too many or too few, JSON that is
not JSON)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from engine import replay
from engine.replay import (EXPECTED_FILE, CdrDiff, ReplayResult, canonical, find_cases, full_form, rate_folder, rated_forms,
                           replay_folder, update_folder)
from engine.yamlio import Problem
from tests.unit.rating.helpers import REPO

GOLDEN = REPO / "tests" / "golden"
CASES = {c.name: c for c in find_cases([GOLDEN])}
# the cases whose plans exercise what the fast form writes: band crossings, bundles, discounts, barring, caps, currencies
SOURCES = sorted(n for n in ("band-split", "bundles", "discounts", "barring", "sample-operator", "caps-minimums",
                             "currency-minor-units", "row-time-bands", "increments-rounding", "plan-versions",
                             "wholesale-mvno", "conditions", "destinations-zones") if n in CASES)


def _old_replay(folder: Path) -> ReplayResult:
    """The comparison as replay ran it before: every CDR priced again for its full form, then compared as dicts."""
    actual: list[dict[str, Any]] = []
    rated: list[Any] = []

    def every_cdr(evaluator: Any, header: Any, lines: Any, rows: Any, plans: Any, out: Any, barred: Any) -> None:
        for k, r in enumerate(out):
            form, full = full_form(evaluator, header, lines[k], rows[k], plans if isinstance(plans, str) else plans[k], r,
                                   barred.get(k))
            actual.append(form)
            rated.append(full)

    result = rate_folder(folder, every_cdr)
    if result.problems:
        return result
    expected_path = folder / EXPECTED_FILE
    expected: list[Any] = []
    if not expected_path.exists():
        result.problems.append(Problem(str(expected_path), 1, 1, "file.missing", "no expected output; run with --update to create it"))
        return result
    for n, line in enumerate(expected_path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                expected.append(json.loads(line))
            except json.JSONDecodeError as exc:
                result.problems.append(Problem(str(expected_path), n, exc.colno, "replay.bad-json", exc.msg))
    if result.problems:
        return result
    for i in range(max(len(expected), len(actual))):
        e = expected[i] if i < len(expected) else None
        a = actual[i] if i < len(actual) else None
        if e != a:
            full = rated[i] if i < len(rated) else None
            result.diffs.append(CdrDiff(i, (a or e or {}).get("cdr_id", "?"), e, a, full.explanation if full is not None else ""))
    return result


def _old_lines(folder: Path) -> list[str]:
    lines: list[str] = []

    def every_cdr(evaluator: Any, header: Any, at: Any, rows: Any, plans: Any, out: Any, barred: Any) -> None:
        lines.extend(canonical(full_form(evaluator, header, at[k], rows[k], plans if isinstance(plans, str) else plans[k], r,
                                         barred.get(k))[0]) for k, r in enumerate(out))

    rate_folder(folder, every_cdr)
    return lines


def _same(new: ReplayResult, old: ReplayResult) -> None:
    assert [(p.file, p.line, p.col, p.code, p.message) for p in new.problems] == \
        [(p.file, p.line, p.col, p.code, p.message) for p in old.problems]
    assert new.diffs == old.diffs
    assert (new.ok, new.count, new.charged_micros, new.render()) == (old.ok, old.count, old.charged_micros, old.render())


def _template(name: str) -> tuple[list[str], list[list[str]]]:
    with (CASES[name] / "cdrs.cdr.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]


@st.composite
def cdr_rows(draw: st.DrawFn, name: str) -> list[list[str]]:
    header, templates = _template(name)
    col = {c: i for i, c in enumerate(header)}
    numbers = sorted({t[col["b_number"]] for t in templates})
    out: list[list[str]] = []
    for n in range(draw(st.integers(1, 30))):
        row = list(draw(st.sampled_from(templates)))
        row[col["cdr_id"]] = draw(st.sampled_from([f"gen-{n:04d}", f"gén-\"{n}\"", ""]))
        row[col["origin_id"]] = f"{n:04d}"
        start = datetime.strptime(row[col["start_time"]], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        start += timedelta(minutes=draw(st.integers(-3 * 1440, 3 * 1440)), seconds=draw(st.integers(0, 59)))
        row[col["start_time"]] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        number = draw(st.sampled_from(numbers))
        row[col["b_number"]] = number + draw(st.sampled_from(["", "", "", "1", "42", "9999"])) if number else number
        service = row[col["service"]]
        if service == "voice":
            # mostly short calls (a bundle pays them in full), some long ones (bundles pay part, bands change)
            row[col["duration_seconds"]] = str(draw(st.sampled_from([0, 1, 30, 59, 61, 90, 120, 180]) | st.sampled_from([0, 1, 30, 59])
                                                    | st.sampled_from([299, 600, 3599, 7300]) | st.integers(0, 8000)))
        elif service == "data":
            row[col["volume_up_bytes"]] = str(draw(st.integers(0, 300_000) | st.integers(0, 3_000_000)))
            row[col["volume_down_bytes"]] = str(draw(st.integers(0, 600_000) | st.integers(0, 60_000_000)))
        else:
            row[col["event_count"]] = str(draw(st.integers(1, 4)))
        bad = draw(st.sampled_from(["", "", "", "", "", "", "negative", "service", "time", "short"]))
        if bad == "negative":
            row[col["duration_seconds"]] = "-5"
        elif bad == "service":
            row[col["service"]] = "fax"
        elif bad == "time":
            row[col["start_time"]] = "2026-02-30T10:00:00Z"
        elif bad == "short":
            row = row[:5]
        out.append(row)
    return [header, *out]


def _mutate(text: list[str], draw: Any) -> list[str]:
    lines = list(text)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["charge", "reformat", "blank", "drop", "extra", "bad-json", "null", "status"]))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines and op not in ("extra", "blank"):
            continue
        if op in ("charge", "status", "reformat") and not lines[i].startswith("{"):
            continue   # (a blank line, null, or a line made bad before)
        if op in ("charge", "status", "reformat"):
            try:
                json.loads(lines[i])
            except json.JSONDecodeError:
                continue
        if op == "charge":
            form = json.loads(lines[i])
            form["charge"] = "0.01" if form.get("charge") != "0.01" else "0.02"
            lines[i] = canonical(form)
        elif op == "status":
            form = json.loads(lines[i])
            form["status"] = "unrated" if form.get("status") != "unrated" else "rated"
            lines[i] = canonical(form)
        elif op == "reformat":   # equal as JSON, not as text
            lines[i] = json.dumps(json.loads(lines[i]), indent=None, separators=(",", ":"), ensure_ascii=True)
        elif op == "blank":
            lines.insert(i, "   ")
        elif op == "drop":
            del lines[i]
        elif op == "extra":
            lines.append('{"cdr_id": "extra", "status": "rated"}')
        elif op == "bad-json":
            lines[i] = lines[i][:-1]
        else:
            lines[i] = "null"
    return lines


def _write_case(folder: Path, name: str, rows: list[list[str]]) -> None:
    source = CASES[name]
    shutil.copytree(source / "plans", folder / "plans")
    for extra in ("subscribers.yaml", "rules"):
        if (source / extra).is_dir():
            shutil.copytree(source / extra, folder / extra)
        elif (source / extra).exists():
            shutil.copy(source / extra, folder / extra)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (folder / "cdrs.cdr.csv").write_text(buffer.getvalue(), encoding="utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_replay_gives_the_result_of_pricing_every_cdr_again(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(SOURCES))
    rows = data.draw(cdr_rows(name))
    chunk = data.draw(st.sampled_from([2, 3, 7, 50_000]))
    before = replay.CHUNK_ROWS
    replay.CHUNK_ROWS = chunk
    try:
        with tempfile.TemporaryDirectory() as tmp:
            case = Path(tmp) / "case"
            _write_case(case, name, rows)
            # the lines --update writes are the old full form, as text
            _result, lines = rated_forms(case)
            assert lines == _old_lines(case)
            _same(replay_folder(case), _old_replay(case))   # no expected file yet
            update_folder(case)
            assert (case / EXPECTED_FILE).read_text(encoding="utf-8") == "".join(line + "\n" for line in lines)
            _same(replay_folder(case), _old_replay(case))
            mutated = _mutate(lines, data.draw)
            (case / EXPECTED_FILE).write_text("".join(line + "\n" for line in mutated), encoding="utf-8")
            new, old = replay_folder(case), _old_replay(case)
            _same(new, old)
            assert new.ok == (not old.problems and not old.diffs)
    finally:
        replay.CHUNK_ROWS = before


def test_every_golden_rating_case_is_written_as_pricing_again_writes_it() -> None:
    """Every golden case's CDRs: the fast lines are the old full form's text, and equal the expected file's lines."""
    for case in CASES.values():
        _result, lines = rated_forms(case)
        assert lines == _old_lines(case), case.name
        expected = [line for line in (case / EXPECTED_FILE).read_text(encoding="utf-8").splitlines() if line.strip()]
        assert [json.loads(x) for x in lines] == [json.loads(x) for x in expected], case.name


def test_a_re_formatted_equal_expected_file_passes_and_a_changed_line_names_its_cdr(tmp_path: Path) -> None:
    case = tmp_path / "bundles"
    shutil.copytree(CASES["bundles"], case)
    lines = (case / EXPECTED_FILE).read_text(encoding="utf-8").splitlines()
    (case / EXPECTED_FILE).write_text("\n".join(json.dumps(json.loads(x), indent=None, separators=(",", ":"))
                                                 for x in lines) + "\n\n", encoding="utf-8")
    assert replay_folder(case).ok
    form = json.loads(lines[2])
    form["spans"][0]["bundle_units"] += 1
    lines[2] = canonical(form)
    (case / EXPECTED_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = replay_folder(case)
    assert [(d.index, d.cdr_id) for d in result.diffs] == [(2, form["cdr_id"])]
    assert result.diffs[0].actual == json.loads((CASES["bundles"] / EXPECTED_FILE).read_text().splitlines()[2])
    assert result.diffs[0].explanation   # the CDR that differs is priced again for its explanation


def test_bad_json_in_the_expected_file_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    case = tmp_path / "discounts"
    shutil.copytree(CASES["discounts"], case)
    lines = (case / EXPECTED_FILE).read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:10]
    lines.append("{oops")
    (case / EXPECTED_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = replay_folder(case)
    assert [(p.code, p.line) for p in result.problems] == [("replay.bad-json", 2), ("replay.bad-json", len(lines))]
    assert not result.diffs and not result.ok
