"""Golden mediation folders (tests/golden/mediation/<case>/): an input file of one shipped layout,
the normalised CDRs, rejects and reconciliation summary it must give.

Each case folder holds ``case.yaml`` (layout, source, input file name), the input, and the
expectations ``expected.cdr.csv`` (engine.cdr file form), ``expected.rejects.jsonl`` and
``expected.summary.json``.  Regenerate them ON PURPOSE with
``RULEBILL_UPDATE_GOLDEN=1 pytest tests/unit/mediation/test_mediation_golden.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.cdr import COLUMNS, write_cdrs
from engine.mediation import Mediator, MemoryMediationStore, ReconciliationSummary, find_layout, row_to_cdr
from engine.mediation.rows import CdrRow
from engine.mediation.sources import find_source
from engine.mediation.tap3 import mediate_tap3
from engine.mediation.tenants import load_tenants

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden" / "mediation"
RULES = REPO / "rules" / "mediation"
# what differs between two correct runs (the layout file's digest, the identity built from it)
UNSTABLE = ("file_id", "layout_version")


@dataclass(frozen=True)
class Case:
    path: Path
    layout: str
    source: str
    input: Path

    @property
    def name(self) -> str:
        return self.path.name


def cases() -> list[Case]:
    out = []
    for folder in sorted(p for p in GOLDEN.iterdir() if (p / "case.yaml").is_file()):
        spec = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
        out.append(Case(folder, spec["layout"], spec.get("source") or "", folder / spec["input"]))
    return out


def mediate_offline(case: Case, block_size: int = 1 << 17, chunk_size: int = 20_000) -> tuple[ReconciliationSummary, MemoryMediationStore]:
    """The case through the engine with an in-memory store (what `rulebill mediate` runs)."""
    store = MemoryMediationStore()
    data = case.input.read_bytes()
    if case.layout == "tap3":
        problems: list[Any] = []
        tenants = load_tenants(RULES / "tenants.yaml", problems)
        assert not problems
        import hashlib

        return mediate_tap3(store, data, hashlib.sha256(data).hexdigest(), case.input.name, tenants=tenants), store
    mediator = Mediator(find_layout(RULES, case.layout), store, store, source=find_source(RULES, case.source),
                        block_size=block_size, chunk_size=chunk_size)
    return mediator.mediate_bytes(data, case.input.name), store


def summary_text(summary: ReconciliationSummary | dict[str, Any]) -> str:
    data = summary.as_dict() if isinstance(summary, ReconciliationSummary) else dict(summary)
    for key in UNSTABLE:
        data.pop(key, None)
    data["already_ingested"] = False
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def cdrs_text(rows: list[CdrRow]) -> str:
    out = io.StringIO()
    write_cdrs([row_to_cdr(r) for r in rows], out)
    return out.getvalue()


def rejects_text(rejects: list[Any]) -> str:
    lines = []
    for r in sorted(rejects, key=lambda r: r.record_no):
        data = r.as_json()
        data.pop("file_id", None)
        lines.append(json.dumps(data, sort_keys=True))
    return "".join(line + "\n" for line in lines)


def expected(case: Case) -> tuple[str, str, str]:
    read = lambda name: (case.path / name).read_text(encoding="utf-8")  # noqa: E731
    return read("expected.summary.json"), read("expected.cdr.csv"), read("expected.rejects.jsonl")


def write_expected(case: Case, summary: str, cdrs: str, rejects: str) -> None:
    (case.path / "expected.summary.json").write_text(summary, encoding="utf-8")
    (case.path / "expected.cdr.csv").write_text(cdrs, encoding="utf-8")
    (case.path / "expected.rejects.jsonl").write_text(rejects, encoding="utf-8")


CDR_ID = COLUMNS.index("cdr_id")
