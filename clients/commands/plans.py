"""``rulebill plans ...``: offline work on plan files (no server needed).

* ``plans validate PATH... [--format text|json]`` — every problem as
  ``file:line:col: code: message``; exit 0 only when the plan set is valid,
  1 when it has problems.
* ``plans compile PATH... [--out FILE]`` — the intermediate form (JSON) the
  engine evaluates; exit 1 when the plan set is invalid.
* ``plans what-if --active PATH... --candidate PATH... --cdrs FILE [--subscribers FILE]``
  — revenue per plan and service under both plan sets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from engine.yamlio import format_problems

EXIT_VALID = 0
EXIT_INVALID = 1


def register(subparsers: Any) -> None:
    plans = subparsers.add_parser("plans", help="validate, compile and compare plan files (offline)")
    commands = plans.add_subparsers(dest="plans_command", required=True)
    v = commands.add_parser("validate", help="check plan files; exit 0 only when everything is valid")
    v.add_argument("paths", nargs="+", metavar="PATH", help="plan files or folders")
    v.add_argument("--format", choices=("text", "json"), default="text")
    v.set_defaults(func=run_validate)
    c = commands.add_parser("compile", help="print the compiled intermediate form (JSON)")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.add_argument("--out", help="write to this file instead of standard output")
    c.set_defaults(func=run_compile)
    w = commands.add_parser("what-if", help="rate CDRs with a candidate and the active plan set; show the difference")
    w.add_argument("--active", nargs="+", required=True, metavar="PATH")
    w.add_argument("--candidate", nargs="+", required=True, metavar="PATH")
    w.add_argument("--cdrs", required=True, help="normalised CDR file (*.cdr.csv)")
    w.add_argument("--subscribers", help="plan assignments (the replay subscribers.yaml format)")
    w.add_argument("--format", choices=("text", "json"), default="text")
    w.set_defaults(func=run_what_if)


def run_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from engine.plans import load_plan_set

    out = out or sys.stdout
    plan_set, problems = load_plan_set(args.paths)
    if args.format == "json":
        out.write(json.dumps({"valid": plan_set is not None, "problems": [p.as_dict() for p in problems]}, indent=2) + "\n")
    elif problems:
        out.write(format_problems(problems, "text") + "\n")
        out.write(f"{len(problems)} problem(s) in {len({p.file for p in problems})} file(s)\n")
    else:
        assert plan_set is not None
        counts = ", ".join(f"{len(plan_set.table(k))} {k.replace('_', ' ')}" for k in
                           ("destinations", "zones", "time_bands", "rates", "tariff_plans", "bundles", "discount_plans"))
        out.write(f"valid: {len(plan_set.files)} files ({counts})\n")
    return EXIT_VALID if plan_set is not None else EXIT_INVALID


def run_compile(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from engine.plans import load_plan_set
    from engine.plans.compiler import build_ir, dump_ir

    out = out or sys.stdout
    plan_set, problems = load_plan_set(args.paths)
    if plan_set is None:
        sys.stderr.write(format_problems(problems) + "\n")
        return EXIT_INVALID
    text = dump_ir(build_ir(plan_set))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return EXIT_VALID


def run_what_if(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from engine.cdr import MediatedCdr, read_cdrs
    from engine.money import format_amount
    from engine.plans import compile_plan_set, load_plan_set
    from engine.rating.whatif import what_if_paths
    from engine.replay import load_assignments

    out = out or sys.stdout
    active_set, problems = load_plan_set(args.active)
    if active_set is None:
        sys.stderr.write("active plan set is invalid:\n" + format_problems(problems) + "\n")
        return EXIT_INVALID
    assign_problems: list[Any] = []
    assignments = load_assignments(Path(args.subscribers), assign_problems) if args.subscribers else None
    if assign_problems:
        sys.stderr.write(format_problems(assign_problems) + "\n")
        return EXIT_INVALID
    with open(args.cdrs, encoding="utf-8", newline="") as stream:
        cdrs = [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]
    report = what_if_paths(cdrs, args.candidate, compile_plan_set(active_set), assignments.plan_for if assignments else None)
    if not report.ok:
        sys.stderr.write("candidate plan set is invalid:\n" + format_problems(report.problems) + "\n")
        return EXIT_INVALID
    if args.format == "json":
        out.write(json.dumps({"lines": [x.as_dict() for x in report.lines], "difference": format_amount(report.difference_micros),
                              "rejected": report.rejected}, indent=2) + "\n")
        return EXIT_VALID
    out.write(f"{'plan':<24} {'service':<14} {'cdrs':>7} {'active':>14} {'candidate':>14} {'difference':>14}\n")
    for x in report.lines:
        out.write(f"{x.plan_id:<24} {x.service:<14} {x.cdrs:>7} {format_amount(x.active_micros):>14} "
                  f"{format_amount(x.candidate_micros):>14} {format_amount(x.difference_micros):>14}\n")
    out.write(f"total difference {format_amount(report.difference_micros)}\n")
    return EXIT_VALID
