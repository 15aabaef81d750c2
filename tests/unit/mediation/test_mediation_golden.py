"""The golden mediation folders: every shipped layout variant gives exactly its expected CDRs,
rejects and summary, with the C block splitter and without it (the pure-Python fallback a build
without a compiler runs), whole and in small blocks and chunks.  See tests/golden/mediation/README.md."""

from __future__ import annotations

import os

import pytest

from engine.mediation import csvblock

from .golden import Case, cases, cdrs_text, expected, mediate_offline, rejects_text, summary_text, write_expected

CASES = cases()


def test_every_shipped_layout_has_a_golden_case() -> None:
    from engine.mediation import layout_names

    from .golden import RULES

    covered = {c.layout for c in CASES}
    assert set(layout_names(RULES)) | {"tap3"} <= covered, "add a golden folder for the new layout"
    for case in CASES:
        assert (case.path / "README.md").is_file(), f"{case.name}: a golden folder says what it shows"


@pytest.fixture(params=["c-splitter", "pure-python"])
def splitter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the C block splitter and with the fallback of a build without it."""
    if request.param == "c-splitter":
        if not csvblock.available():
            pytest.skip("the C extension is not built: the pure-python run covers this build")
    else:
        monkeypatch.setattr(csvblock, "_split", None)
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
