"""``rulebill replay FOLDER... [--junit FILE] [--update]``: QA replay of golden folders (offline).

Each FOLDER is a golden case (has ``plans/``) or a folder of cases.  A file among them (the ``README.md`` a
shell glob such as ``tests/golden/*`` picks up) is skipped with a note on stderr; a path that does not exist is a
failing case; a folder that holds no case (``tests/golden/mediation``: mediation cases, which run through pytest) is
named on stderr and fails the run.  A case with ``accounts.yaml`` is a bill case
(accounts, CDRs and bill run steps compared with the expected invoices, see ``engine.billing.replay``); the shipped
ones are in ``tests/golden/bills/`` (``rulebill replay tests/golden tests/golden/bills`` runs the rating and the bill cases).  Exit 0
when every case matches; 1 when a case differs or cannot run (a per-CDR diff
says expected vs actual charge and which rate and span), or a named folder holds no case; ``--update``
rewrites each case's expected output from the current engine, on purpose: ``expected.jsonl`` of a rating case,
``expected.yaml`` of a bill case.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("replay", help="rate golden folders and compare with their expected output")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="a case folder or a folder of cases (files are skipped)")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--update", action="store_true",
                   help="rewrite each case's expected output from the current engine (expected.jsonl of a rating case, "
                        "expected.yaml of a bill case)")
    p.set_defaults(func=run_replay, exit_codes={0: "every case matches (with --update: every case was rewritten)",
                                                1: "a case differs or cannot run, a named folder holds no case, "
                                                   "or no case was found"})


def run_replay(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from engine.billing.replay import is_bill_case, replay_bill_case, update_bill_case
    from engine.replay import cases_in, junit_xml, replay_folder, update_folder

    out = out or sys.stdout
    err = err or sys.stderr
    files = [f for f in args.folders if Path(f).is_file()]
    for name in files:
        err.write(f"replay: skipping {name}: a file, not a case folder\n")
    cases: list[Path] = []
    empty: list[str] = []
    for name in (f for f in args.folders if f not in files):
        found = cases_in(Path(name))
        if not found:
            err.write(f"replay: {name}: no replay case in it (a case folder, or one of its subfolders, has plans/; "
                      "the golden mediation folders run through pytest)\n")
            empty.append(name)
        cases.extend(found)
    if not cases:
        out.write("no golden folders found\n")
        return 1
    results: list[Any] = []
    for c in cases:
        if is_bill_case(c):
            results.append(update_bill_case(c) if args.update else replay_bill_case(c))
        else:
            results.append(update_folder(c) if args.update else replay_folder(c))
    for r in results:
        if args.update and not r.problems:
            out.write(f"updated {r.name}: {r.count} {'documents' if is_bill_case(r.folder) else 'CDRs'}\n")
        else:
            out.write(r.render() + "\n")
    if args.junit:
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    failed = sum(1 for r in results if r.problems or (not args.update and r.diffs))
    out.write(f"{len(results) - failed} of {len(results)} case(s) passed\n")
    if empty:
        out.write(f"{len(empty)} folder(s) without a case: {', '.join(empty)}\n")
    return 0 if failed == 0 and not empty else 1
