"""The golden mediation folders: every shipped layout variant gives exactly its expected CDRs,
rejects and summary, with the C extensions and without any of them (the pure-Python fallback a build
without a compiler runs: every C hook of the mediation package switched off), whole and in small blocks
and chunks.  See tests/golden/mediation/README.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.mediation import batch, csvblock, numbering_plan
from engine.mediation.conversions import timestamp

from .golden import Case, cases, cdrs_text, expected, mediate_offline, rejects_text, summary_text, write_expected

CASES = cases()


def test_every_shipped_layout_has_a_golden_case() -> None:
    from engine.mediation import layout_names

    from .golden import RULES

    covered = {c.layout for c in CASES}
    assert set(layout_names(RULES)) | {"tap3"} <= covered, "add a golden folder for the new layout"
    for case in CASES:
        assert (case.path / "README.md").is_file(), f"{case.name}: a golden folder says what it shows"


# every name the mediation package binds to a function of its C extensions (_csvblock.c, _cdrid.c): the
# pure-python run sets each to None, as a build without a compiler has them
C_HOOKS = [(csvblock, "_split"), (csvblock, "_count_lines"), (batch, "_cdr_ids"), (numbering_plan, "_c_column"),
           (timestamp, "_c_column")]
_C_IMPORT = re.compile(r"^\s*from engine\.mediation\._\w+ import (\w+)(?: as (\w+))?", re.M)


def test_the_pure_python_run_switches_off_every_c_hook_of_the_mediation_package() -> None:
    """A C function imported anywhere in engine/mediation is in C_HOOKS (else the pure-python golden run would still
    run it); csvblock's splitter is bound twice (_split_block, then _split, the one its reader calls)."""
    package = Path(csvblock.__file__).parent
    imported = {(str(path.relative_to(package)), m.group(2) or m.group(1))
                for path in sorted(package.rglob("*.py")) for m in _C_IMPORT.finditer(path.read_text(encoding="utf-8"))}
    hooked = {(str(Path(m.__file__).relative_to(package)), name) for m, name in C_HOOKS}
    assert imported - {("csvblock.py", "_split_block")} == hooked - {("csvblock.py", "_split")}
    assert all(getattr(m, name) is not None for m, name in C_HOOKS) or not csvblock.available()


@pytest.fixture(params=["c-extensions", "pure-python"])
def splitter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the C extensions and with the fallback of a build without them."""
    if request.param == "c-extensions":
        if not csvblock.available():
            pytest.skip("the C extension is not built: the pure-python run covers this build")
    else:
        for module, name in C_HOOKS:
            monkeypatch.setattr(module, name, None)
    return str(request.param)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Case, splitter: str) -> None:
    summary, store = mediate_offline(case)
    got = (summary_text(summary), cdrs_text(list(store.cdrs.values())), rejects_text(store.rejects))
    if os.environ.get("RULEBILL_UPDATE_GOLDEN") and splitter == "pure-python":
        write_expected(case, *got)
    want = expected(case)
    assert got[0] == want[0], f"{case.name}: summary differs"
    assert got[1] == want[1], f"{case.name}: CDRs differ"
    assert got[2] == want[2], f"{case.name}: rejects differ"
    summary.check()


@pytest.mark.parametrize("case", [c for c in CASES if c.layout != "tap3"], ids=[c.name for c in CASES if c.layout != "tap3"])
def test_golden_case_in_small_blocks_and_chunks(case: Case, splitter: str) -> None:
    """Block and chunk boundaries (records given back across blocks, legs held across chunks) change nothing."""
    summary, store = mediate_offline(case, block_size=1024, chunk_size=2)
    want = expected(case)
    assert summary_text(summary) == want[0]
    assert cdrs_text(list(store.cdrs.values())) == want[1]
    assert rejects_text(store.rejects) == want[2]
