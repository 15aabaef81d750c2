"""`rulebill replay`'s expected lines written and compared in C (engine/_replaylines.c, engine.replay.LineWriter).

Held to two oracles: canonical(full_form(...)) -- the CDR priced again, what ``--update`` wrote before -- on CDRs
generated from the golden folders' plan sets (ids, services and numbers with quotes, backslashes, control and
non-ASCII characters; chunk sizes; expected files read in small blocks, with "\\r\\n" ends and blank lines of
Unicode spaces), and Evaluator.rated_of (the RatedCdr of a rated row, as_dict()) on rows built directly: every
string of the line (plan, destination, zone, band, rate, bundle and discount ids) drawn with JSON's escapes and
non-ASCII, amounts in currencies of 0, 2, 3 and 4 minor units (and none), bundles, discount lines, spans by parts,
prefixes the C table takes and prefixes only the index's own lookup takes.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import replay
from engine.rating.evaluator import RATED, Evaluator
from engine.rating.prefix import PrefixIndex
from engine.rating.result import DiscountLine
from engine.replay import (EXPECTED_FILE, LineWriter, canonical, full_form, rate_folder, rated_forms, replay_folder,
                           update_folder)
from tests.unit.rating.helpers import compile_folder
from tests.unit.rating.test_replay_fast import CASES, SOURCES, _old_lines, _old_replay, _same, _write_case, cdr_rows

pytestmark = pytest.mark.skipif(replay._CLineWriter is None, reason="engine/_replaylines.c not built (test_c_extensions fails)")

# characters json.dumps escapes (and one it does not: DEL), non-ASCII of 2, 3 and 4 bytes, a line separator
ODD = ['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\x85"]
TEXT = st.text(st.sampled_from(ODD) | st.characters(codec="utf-8"), max_size=6)
ID_CELLS = ["gen-{n}", 'q"uote-{n}', "back\\slash-{n}", "tab\t{n}", "ctl\x01\x1f-{n}", "é-{n}-€", "😀{n}", "nl\n{n}"]


def _chunks(case: Path) -> list[tuple[Any, ...]]:
    held: list[tuple[Any, ...]] = []
    rate_folder(case, lambda *chunk: held.append(chunk))
    return held


def _full_lines(chunk: tuple[Any, ...]) -> list[str]:
    evaluator, header, at, rows, plans, out, barred = chunk
    return [canonical(full_form(evaluator, header, at[k], rows[k], plans if isinstance(plans, str) else plans[k], r,
                                barred.get(k))[0]) for k, r in enumerate(out)]


def _left_to_full_form(chunk: tuple[Any, ...]) -> list[int]:
    """The rows the line writer must leave to full_form: not rated, no price kept as a tuple, no version, no id."""
    _evaluator, header, _at, rows, _plans, out, _barred = chunk
    ids = replay._columns(rows, header)[0]
    return [k for k, r in enumerate(out) if r[0] != RATED or type(r[9]) is not tuple or r[4] is None or not ids[k]]


def test_every_golden_case_is_written_byte_for_byte_and_only_the_others_go_through_full_form() -> None:
    written = 0
    for name, case in sorted(CASES.items()):
        writer = LineWriter()
        for chunk in _chunks(case):
            c_lines = writer._c.lines(chunk[5], *replay._columns(chunk[3], chunk[1]))  # type: ignore[union-attr]
            assert [k for k, t in enumerate(c_lines) if t is None] == _left_to_full_form(chunk), name
            full = _full_lines(chunk)
            assert [t for t in c_lines if t is not None] == [full[k] for k, t in enumerate(c_lines) if t is not None], name
            assert writer.lines(*chunk) == full, name
            written += sum(t is not None for t in c_lines)
    assert written > 100   # (the golden rows the batch loops rate: most of them)


def _c_mismatches(case: Path) -> int:
    """The CDRs whose line the C writer wrote and found different, as bytes, from the expected line."""
    comparison = replay._Comparison(case / EXPECTED_FILE)
    count = 0

    def each(_evaluator: Any, header: Any, _at: Any, rows: Any, _plans: Any, out: Any, _barred: Any) -> None:
        nonlocal count
        count += sum(1 for m in comparison.writer.mismatches(out, rows, header, comparison.expected) if m[3] is not None)

    rate_folder(case, each)
    comparison.expected.close()
    return count


def _escape_rows(rows: list[list[str]], draw: st.DrawFn) -> list[list[str]]:
    header = rows[0]
    col = {c: i for i, c in enumerate(header)}
    out = [header]
    for n, row in enumerate(rows[1:]):
        row = list(row)
        if len(row) == len(header):
            row[col["cdr_id"]] = draw(st.sampled_from(ID_CELLS)).format(n=n)
            if draw(st.booleans()):   # a number the evaluator takes or rejects, written either way
                row[col["b_number"]] = row[col["b_number"]] + draw(st.sampled_from(["", "7", "é", '"', "\\"]))
        out.append(row)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_c_lines_are_the_full_forms_text_on_generated_cases(data: st.DataObject) -> None:
    """Golden plan sets, CDRs generated from their rows with odd ids and numbers, any chunk size: the lines --update
    writes are canonical(full_form) of every CDR; replayed against them (read in blocks of any size, with "\\r\\n"
    ends and blank lines of Unicode spaces) the case passes; a charge changed is the one CDR that differs."""
    name = data.draw(st.sampled_from(SOURCES))
    rows = _escape_rows(data.draw(cdr_rows(name)), data.draw)
    chunk, block = data.draw(st.sampled_from([1, 3, 50_000])), data.draw(st.sampled_from([16, 97, 4096, 1 << 22]))
    before = replay.CHUNK_ROWS, replay._ExpectedLines.BLOCK
    replay.CHUNK_ROWS, replay._ExpectedLines.BLOCK = chunk, block
    try:
        with tempfile.TemporaryDirectory() as tmp:
            case = Path(tmp) / "case"
            _write_case(case, name, rows)
            _result, lines = rated_forms(case)
            assert lines == _old_lines(case)
            update_folder(case)
            assert replay_folder(case).ok
            ends = data.draw(st.sampled_from(["\n", "\r\n"]))
            blank = data.draw(st.sampled_from(["", " \u3000\u00a0\t", "\x1c\x1f"]))
            text = "".join(line + ends + (blank + ends if blank and k % 3 == 0 else "") for k, line in enumerate(lines))
            (case / EXPECTED_FILE).write_bytes(text.encode("utf-8"))
            result = replay_folder(case)
            assert result.ok, result.render()
            assert _c_mismatches(case) == 0   # (equal as text: not one line left to the JSON comparison)
            _same(result, _old_replay(case))
            if lines:
                k = data.draw(st.integers(0, len(lines) - 1))
                form = json.loads(lines[k])
                form["charge"] = "12345.67"
                changed = [*lines[:k], canonical(form), *lines[k + 1:]]
                (case / EXPECTED_FILE).write_text("".join(x + ends for x in changed), encoding="utf-8")
                result = replay_folder(case)
                assert [d.index for d in result.diffs] == [k] and not result.problems
                _same(result, _old_replay(case))
    finally:
        replay.CHUNK_ROWS, replay._ExpectedLines.BLOCK = before


def test_without_the_c_module_every_line_is_full_forms_and_replay_gives_the_same_result(tmp_path: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    case = tmp_path / "bundles"
    shutil.copytree(CASES["bundles"], case)
    lines = (case / EXPECTED_FILE).read_text(encoding="utf-8").splitlines()
    form = json.loads(lines[1])
    form["units"] += 1
    lines[1] = canonical(form)
    (case / EXPECTED_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with_c, c_lines = replay_folder(case), rated_forms(case)[1]
    monkeypatch.setattr(replay, "_CLineWriter", None)
    assert LineWriter()._c is None
    without = replay_folder(case)
    assert rated_forms(case)[1] == c_lines
    _same(without, with_c)
    assert [d.index for d in without.diffs] == [1]


def test_an_expected_file_that_is_not_utf8_is_a_problem_on_its_line_not_a_crash(tmp_path: Path) -> None:
    case = tmp_path / "discounts"
    shutil.copytree(CASES["discounts"], case)
    data = (case / EXPECTED_FILE).read_bytes().split(b"\n")
    data[2] = data[2].replace(b'"cdr_id": "', b'"cdr_id": "\xff', 1)
    (case / EXPECTED_FILE).write_bytes(b"\n".join(data))
    result = replay_folder(case)
    assert [(p.code, p.line) for p in result.problems] == [("replay.bad-json", 3)]
    assert not result.ok


def test_a_line_separator_in_an_id_is_one_line_as_update_writes_it(tmp_path: Path) -> None:
    """json.dumps leaves U+2028 and U+0085 as they are: the file's lines are split at "\\n" alone (str.splitlines,
    which replay used before, split such a line in two)."""
    header, *rows = list(csv.reader(io.StringIO((CASES["bundles"] / "cdrs.cdr.csv").read_text(encoding="utf-8"))))
    i = header.index("cdr_id")
    rows[0][i], rows[1][i] = "a\u2028b", "c\x85d"
    case = tmp_path / "case"
    _write_case(case, "bundles", [header, *rows])
    update_folder(case)
    assert "a\u2028b" in (case / EXPECTED_FILE).read_text(encoding="utf-8")
    result = replay_folder(case)
    assert result.ok, result.render()


# == rows built directly, against Evaluator.rated_of ==========================================================

_EVALUATOR = Evaluator(compile_folder(CASES["bundles"] / "plans"))
_VERSION = next(iter(_EVALUATOR.compiled.plans.values())).versions[0]
INT = st.integers(-(10**15), 10**15)
UNITS = st.integers(0, 10**9)


@st.composite
def rated_rows(draw: st.DrawFn) -> tuple[tuple[Any, ...], str, str, str]:
    unicode_prefixes = draw(st.booleans())
    prefixes = draw(st.lists(st.text("0123456789", min_size=0, max_size=7), max_size=6, unique=True))
    if unicode_prefixes:
        prefixes.append(draw(TEXT))
    index = PrefixIndex((p, f"G{k}") for k, p in enumerate(prefixes))
    v = replace(_VERSION, currency=draw(st.sampled_from(["EUR", "JPY", "KWD", "CLF", "", "XYZ"])), plan_id=draw(TEXT),
                version=draw(st.integers(0, 10**6)), index=index)
    number = draw(st.sampled_from(prefixes or [""]) | TEXT) + draw(st.text("0123456789", max_size=4) | TEXT)
    uses = draw(st.none() | st.just(()) | st.lists(st.tuples(TEXT, UNITS), min_size=1, max_size=3).map(tuple))
    kind = draw(st.sampled_from(["one", "discounts", "parts"]))
    if kind == "parts":
        spans = draw(st.lists(st.tuples(UNITS, UNITS, TEXT, TEXT, UNITS, UNITS, INT), max_size=3).map(tuple))
        how: tuple[Any, ...] = (draw(INT), spans)
    else:
        how = (draw(INT), draw(UNITS), draw(INT))
        if kind == "discounts":
            how = (*how, draw(st.lists(st.builds(DiscountLine, TEXT, INT, TEXT, TEXT), max_size=3).map(tuple)))
    row = (RATED, draw(INT), draw(TEXT), uses, v, draw(TEXT), draw(TEXT), draw(UNITS), draw(TEXT), how)
    return row, draw(TEXT.filter(bool)), draw(TEXT), number


@settings(max_examples=400, deadline=None)
@given(rated_rows())
def test_a_rated_row_is_written_as_rated_of_gives_it(drawn: tuple[tuple[Any, ...], str, str, str]) -> None:
    row, cdr_id, service, number = drawn
    cdr = SimpleNamespace(cdr_id=cdr_id, b_number=number, service=SimpleNamespace(value=service))
    want = canonical(_EVALUATOR.rated_of(row, cdr, "P").as_dict())   # type: ignore[arg-type]
    assert LineWriter()._c.lines([row], [cdr_id], [service], [number]) == [want]  # type: ignore[union-attr]


def test_rows_it_does_not_write_are_left_to_full_form() -> None:
    one = (RATED, 10, "RT", None, _VERSION, "G", "home", 60, "PEAK", (10, 60, 10))
    writer = LineWriter()._c
    assert writer is not None
    cases = {
        "written": (one, "id", "voice", "33"),
        "no id": (one, "", "voice", "33"),
        "not rated": (("unrated", 0, "no-rate: x", None, _VERSION, "", "", 0, "", None), "id", "voice", "33"),
        "priced the per-CDR way": ((*one[:9], [10, 60, 10]), "id", "voice", "33"),
        "no version": ((*one[:4], None, *one[5:]), "id", "voice", "33"),
        "a bool for an int": ((*one[:7], True, *one[8:]), "id", "voice", "33"),
        "beyond 64 bits": ((RATED, 2**70, *one[2:]), "id", "voice", "33"),
        "a lone surrogate": (one, "id\udc80", "voice", "33"),
        "a number that is not text": (one, "id", "voice", None),
    }
    got = {name: writer.lines([r], [i], [s], [n])[0] is not None for name, (r, i, s, n) in cases.items()}
    assert got == {name: name == "written" for name in cases}
