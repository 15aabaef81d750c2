"""QA replay: rate a golden folder's CDRs and compare with its expected output.

A golden folder holds::

    plans/             the plan set (any layout the loader accepts)
    cdrs.cdr.csv       input CDRs in the normalised CDR format (engine.cdr)
    subscribers.yaml   optional: which plan and bundle counters each subscriber has
    expected.jsonl     one RatedCdr.as_dict() per input CDR, in input order
    README.md          what the case shows

``subscribers.yaml``::

    default_plan: TP_RETAIL_M            # for CDRs nobody is assigned to
    tenants: {mvno-alpha: TP_WS_ALPHA}   # by the CDR's tenant (wholesale)
    subscribers:                         # by a_number
      "33612000001": {plan: TP_RETAIL_M, bundles: {BN_VOICE_300: 18000}}

A CDR attribute ``plan=...`` overrides all of these.  Bundle counters carry
from one CDR to the next of the same subscriber, in file order, exactly as a
rating run would.  Rejected input rows (bad values) are rated ``rejected``
with their line number, so they are part of the comparison too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from engine.cdr import CdrReject, MediatedCdr, read_cdrs
from engine.money import format_amount
from engine.plans import compile_plan_set, load_plan_set
from engine.rating import BundleState, Rater, RatedCdr, RatingStatus
from engine.yamlio import Fields, MarkedMap, Problem, format_problems, load_file

CDR_FILE = "cdrs.cdr.csv"
EXPECTED_FILE = "expected.jsonl"
SUBSCRIBERS_FILE = "subscribers.yaml"


@dataclass
class CdrDiff:
    index: int
    cdr_id: str
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    explanation: str = ""

    def render(self) -> str:
        out = [f"  CDR #{self.index + 1} {self.cdr_id[:16]}:"]
        e, a = self.expected or {}, self.actual or {}
        if not self.expected:
            out.append("    not expected (expected.jsonl has fewer lines)")
        if not self.actual:
            out.append("    missing from the actual output")
        if e and a:
            if e.get("status") != a.get("status"):
                out.append(f"    status: expected {e.get('status')}, actual {a.get('status')} {a.get('reason', '')}".rstrip())
            if e.get("charge") != a.get("charge") or e.get("currency") != a.get("currency"):
                out.append(f"    charge: expected {e.get('charge')} {e.get('currency', '')}, actual {a.get('charge')} {a.get('currency', '')}")
            for key in sorted(set(e) | set(a)):
                if key in ("status", "charge", "charge_micros", "currency", "spans", "reason") or e.get(key) == a.get(key):
                    continue
                out.append(f"    {key}: expected {json.dumps(e.get(key))}, actual {json.dumps(a.get(key))}")
            if e.get("reason") != a.get("reason") and e.get("status") == a.get("status"):
                out.append(f"    reason: expected {e.get('reason')!r}, actual {a.get('reason')!r}")
            if e.get("spans") != a.get("spans"):
                out.append("    spans expected: " + _spans(e.get("spans")))
                out.append("    spans actual:   " + _spans(a.get("spans")))
        if self.explanation:
            out.append(f"    why (actual): {self.explanation}")
        return "\n".join(out)


def _spans(spans: Any) -> str:
    if not spans:
        return "-"
    return " | ".join(f"{s['band']} {s['rate']} {s['start']}-{s['end']} billed {s['billed_units']}"
                      f"{' bundle ' + str(s['bundle_units']) if s.get('bundle_units') else ''} = {s['charge']}" for s in spans)


@dataclass
class ReplayResult:
    folder: Path
    problems: list[Problem] = field(default_factory=list)
    diffs: list[CdrDiff] = field(default_factory=list)
    actual: list[dict[str, Any]] = field(default_factory=list)
    rated: list[RatedCdr] = field(default_factory=list)
    count: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.diffs

    @property
    def name(self) -> str:
        return self.folder.name

    def render(self) -> str:
        if self.problems:
            return f"FAIL {self.name}: the case cannot run\n" + format_problems(self.problems)
        if not self.diffs:
            return f"ok   {self.name}: {self.count} CDRs match"
        head = f"FAIL {self.name}: {len(self.diffs)} of {self.count} CDRs differ"
        return "\n".join([head, *(d.render() for d in self.diffs)])


@dataclass
class Assignments:
    default_plan: str = ""
    tenants: dict[str, str] = field(default_factory=dict)
    subscribers: dict[str, str] = field(default_factory=dict)
    bundles: dict[str, dict[str, int]] = field(default_factory=dict)

    def plan_for(self, cdr: MediatedCdr) -> str:
        return cdr.attributes.get("plan") or self.subscribers.get(cdr.a_number) or self.tenants.get(cdr.tenant) or self.default_plan


def load_assignments(path: Path, problems: list[Problem]) -> Assignments:
    out = Assignments()
    if not path.exists():
        return out
    doc = load_file(path, problems)
    if doc is None:
        return out
    f = Fields(doc, "subscribers", problems)
    out.default_plan = f.optional("default_plan", str, default="")
    out.tenants = {str(k): str(v) for k, v in (f.optional("tenants", dict, default={}) or {}).items()}
    subs = f.optional("subscribers", dict, default={}) or {}
    f.done()
    for number, spec in subs.items():
        sf = Fields(spec, f"subscribers.{number}", problems, fallback=subs.mark_of(number) if isinstance(subs, MarkedMap) else None)
        plan = sf.optional("plan", str)
        bundles = sf.optional("bundles", dict, default={}) or {}
        sf.done()
        if plan:
            out.subscribers[str(number)] = plan
        if bundles:
            out.bundles[str(number)] = {str(k): int(v) for k, v in bundles.items()}
    return out


def rate_folder(folder: Path) -> ReplayResult:
    folder = Path(folder)
    result = ReplayResult(folder)
    plan_set, problems = load_plan_set([folder / "plans"], root=folder)
    result.problems.extend(problems)
    assignments = load_assignments(folder / SUBSCRIBERS_FILE, result.problems)
    cdr_path = folder / CDR_FILE
    if not cdr_path.exists():
        result.problems.append(Problem(str(cdr_path), 1, 1, "file.missing", "the case has no input CDR file"))
    if result.problems or plan_set is None:
        return result
    rater = Rater(compile_plan_set(plan_set))
    states: dict[str, BundleState] = {k: BundleState(v) for k, v in assignments.bundles.items()}
    with cdr_path.open(encoding="utf-8", newline="") as stream:
        for item in read_cdrs(stream):
            if isinstance(item, CdrReject):
                rated = RatedCdr(f"line-{item.line}", RatingStatus.REJECTED, reason=f"rejected: {item.reason}")
            else:
                state = states.get(item.a_number)
                rated = rater.rate(item, assignments.plan_for(item), state)
                if rated.bundle_state is not None:
                    states[item.a_number] = rated.bundle_state
            result.rated.append(rated)
            result.actual.append(rated.as_dict())
    result.count = len(result.actual)
    return result


def replay_folder(folder: Path | str) -> ReplayResult:
    """Rate the folder's CDRs and compare with expected.jsonl."""
    folder = Path(folder)
    result = rate_folder(folder)
    if result.problems:
        return result
    expected_path = folder / EXPECTED_FILE
    expected: list[dict[str, Any]] = []
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
    for i in range(max(len(expected), len(result.actual))):
        e = expected[i] if i < len(expected) else None
        a = result.actual[i] if i < len(result.actual) else None
        if e != a:
            why = result.rated[i].explanation if i < len(result.rated) else ""
            result.diffs.append(CdrDiff(i, (a or e or {}).get("cdr_id", "?"), e, a, why))
    return result


def update_folder(folder: Path | str) -> ReplayResult:
    """Rewrite expected.jsonl from the current engine (on purpose: review the diff before committing)."""
    folder = Path(folder)
    result = rate_folder(folder)
    if not result.problems:
        text = "".join(json.dumps(a, sort_keys=True, ensure_ascii=False) + "\n" for a in result.actual)
        (folder / EXPECTED_FILE).write_text(text, encoding="utf-8")
    return result


def find_cases(paths: list[Path | str]) -> list[Path]:
    """Folders that are cases (have plans/), or whose direct subfolders are."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "plans").is_dir():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if (c / "plans").is_dir()))
        else:
            out.append(p)  # reported as a problem by replay_folder
    return out


def junit_xml(results: list[ReplayResult], suite: str = "rulebill.replay") -> str:
    failures = sum(1 for r in results if not r.ok)
    rows = [f'<?xml version="1.0" encoding="UTF-8"?>',
            f"<testsuites><testsuite name={quoteattr(suite)} tests=\"{len(results)}\" failures=\"{failures}\" errors=\"0\">"]
    for r in results:
        rows.append(f"<testcase classname={quoteattr(suite)} name={quoteattr(r.name)}>")
        if not r.ok:
            message = "plan set or case files invalid" if r.problems else f"{len(r.diffs)} of {r.count} CDRs differ"
            rows.append(f"<failure message={quoteattr(message)}>{escape(r.render())}</failure>")
        rows.append("</testcase>")
    rows.append("</testsuite></testsuites>")
    return "\n".join(rows) + "\n"


def totals(result: ReplayResult) -> str:
    charged = sum(r.charge_micros for r in result.rated if r.rated)
    return format_amount(charged)
