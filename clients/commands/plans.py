"""``rulebill plans ...``: work on plan files.  ``validate``, ``compile`` and ``import-cgrates`` run offline (no
server needed); ``what-if`` uploads the candidate to the server unless ``--active`` names the active plan set's files.

* ``plans validate PATH... [--format text|json]`` — every problem as
  ``file:line:col: code: message``; exit 0 only when everything is valid,
  1 when anything has problems.  PATHs may be plan files/folders, rules/ (or
  rules/barring, rules/alerts, rules/lifecycle, rules/mediation, rules/billing) and
  plans/vouchers; given plans and rules together, the rules' references to
  destination groups, tariff plans and tenants are checked against the plans (and
  the charge rules' tenants and charges against plans/billing).
* ``plans compile PATH... [--out FILE]`` — the intermediate form (JSON) the
  engine evaluates; exit 1 when the plan set is invalid.
* ``plans what-if --candidate FOLDER --cdrs FILE`` — against a running server: the candidate folder is uploaded
  as a new version (not activated) and compared with the version active there (``WhatIf``), on the CDRs of FILE,
  each priced with its calling subscriber's tariff plan (looked up once per number).
* ``plans what-if --active PATH... --candidate PATH... --cdrs FILE [--subscribers FILE]`` — offline, no server:
  revenue per plan and service under both plan sets.
* ``plans import-cgrates DIR --out DIR [--tenant ID] [--currency CODE]`` — a CGRateS tariff-plan folder
  (its rating CSVs) as plan files, validated with the normal loader; prints what it could not carry over
  exactly (``file:line``); exit 1, writing nothing, when a CSV has errors (all listed).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from clients.commandkit import SERVER_HELP, TOKEN_HELP
from engine.yamlio import format_problems

EXIT_VALID = 0
EXIT_INVALID = 1


def register(subparsers: Any) -> None:
    plans = subparsers.add_parser("plans", help="validate, compile and import plan files (offline); compare plan sets "
                                                 "(what-if: against the server, offline with --active)")
    commands = plans.add_subparsers(dest="plans_command", required=True)
    v = commands.add_parser("validate", help="check plan files; exit 0 only when everything is valid")
    v.add_argument("paths", nargs="+", metavar="PATH", help="plan files or folders, rules/ folders or files, plans/vouchers")
    v.add_argument("--format", choices=("text", "json"), default="text")
    v.set_defaults(func=run_validate, exit_codes={0: "everything is valid", 1: "a plan file is invalid (each problem on stderr as file:line:col)"})
    c = commands.add_parser("compile", help="print the compiled intermediate form (JSON)")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.add_argument("--out", help="write to this file instead of standard output")
    c.set_defaults(func=run_compile, exit_codes={0: "compiled", 1: "the plan files are invalid (each problem on stderr)"})
    w = commands.add_parser("what-if", help="rate CDRs with a candidate and the active plan set; show the difference")
    w.add_argument("--active", nargs="+", metavar="PATH",
                   help="offline: the active plan set's files (default: the version active on the server)")
    w.add_argument("--candidate", nargs="+", required=True, metavar="PATH",
                   help="the candidate plan set (against a server: one plan folder, uploaded as a new version, not activated)")
    w.add_argument("--cdrs", required=True, help="normalised CDR file (*.cdr.csv)")
    w.add_argument("--subscribers", help="offline: plan assignments (the replay subscribers.yaml format)")
    w.add_argument("--format", choices=("text", "json"), default="text")
    w.add_argument("--server", help=f"without --active: {SERVER_HELP}")
    w.add_argument("--token", help=f"without --active: {TOKEN_HELP}")
    w.set_defaults(func=run_what_if, exit_codes={0: "compared", 1: "a plan set or the subscribers file is invalid (problems on stderr)"})
    i = commands.add_parser("import-cgrates", help="import a CGRateS tariff-plan folder (CSV) as plan files")
    i.add_argument("folder", metavar="DIR", help="a CGRateS tariff-plan folder (Destinations.csv, Rates.csv, ...)")
    i.add_argument("--out", required=True, metavar="DIR", help="where to write the plan files (e.g. plans/imported/)")
    i.add_argument("--tenant", default="mno", help="the tenant that owns the imported tariff plans (default mno)")
    i.add_argument("--currency", default="EUR", help="ISO 4217 currency of the prices (CGRateS CSVs do not say; default EUR)")
    i.set_defaults(func=run_import_cgrates, exit_codes={0: "imported", 1: "a CSV problem, an unknown currency or imported files that "
                                                                           "do not validate (nothing or all written, problems on stderr)"})


RULE_PARTS = ("barring", "alerts", "lifecycle")


@dataclass
class _Targets:
    """What each PATH of ``plans validate`` is: plan files, event rules, mediation layouts or voucher profiles."""

    plans: list[Path] = field(default_factory=list)
    rules: list[Path] = field(default_factory=list)
    mediation: list[Path] = field(default_factory=list)
    charge_rules: list[Path] = field(default_factory=list)   # rules/billing
    vouchers: list[Path] = field(default_factory=list)
    operator_files: list[Path] = field(default_factory=list)


def _classify(paths: list[str]) -> _Targets:
    t = _Targets()
    for raw in paths:
        p = Path(raw)
        parts = p.resolve().parts
        where = max((i for i, x in enumerate(parts) if x == "rules"), default=-1)
        below = parts[where + 1] if 0 <= where < len(parts) - 1 else ""
        if p.is_dir() and (where == len(parts) - 1 or any((p / d).is_dir() for d in RULE_PARTS)) and not (p / "tariff_plans").exists():
            # a rules/ root: its event-rule folders and its mediation layouts
            t.rules.extend(p / d for d in RULE_PARTS if (p / d).is_dir())
            if (p / "mediation").is_dir():
                t.mediation.append(p / "mediation")
            if (p / "billing").is_dir():
                t.charge_rules.append(p / "billing")
        elif below == "billing":
            t.charge_rules.append(p if p.is_dir() else p.parent)
        elif below in RULE_PARTS:
            t.rules.append(p)
        elif below == "mediation":
            t.mediation.append(p if p.is_dir() else p.parent)
        elif p.name == "vouchers" or (not p.is_dir() and p.parent.name == "vouchers"):  # not a checkout named "vouchers"
            t.vouchers.append(p)
        else:
            t.plans.append(p)
            if p.is_dir() and (p / "vouchers").is_dir():
                t.vouchers.append(p / "vouchers")
            if p.is_dir() and (p / "operator.yaml").is_file():
                t.operator_files.append(p / "operator.yaml")
    t.mediation = list(dict.fromkeys(t.mediation))
    return t


def validate_paths(paths: list[str]) -> tuple[bool, list[Any], dict[str, Any]]:
    """Validate plan files, rule files, mediation layouts and voucher profiles together.

    Returns (valid, problems, summary); cross-references between rules and plans
    (destination groups, tariff plans, tenants) are checked when both are given.
    """
    from engine.eventrules import load_rules
    from engine.operator import load_operator
    from engine.plans import load_plan_set

    t = _classify(paths)
    problems: list[Any] = []
    summary: dict[str, Any] = {}
    plan_set = None
    tenants: set[str] | None = None
    if t.plans:
        plan_set, plan_problems = load_plan_set([str(p) for p in t.plans])
        problems.extend(plan_problems)
        if plan_set is not None:
            summary["plans"] = {k: len(plan_set.table(k)) for k in
                                ("destinations", "zones", "time_bands", "rates", "tariff_plans", "bundles", "discount_plans")}
            summary["plan_files"] = len(plan_set.files)
            summary["files"] = plan_set_file_count(t.plans)
            tenants = {x for tp in plan_set.tariff_plans.values() for x in (tp.tenant, tp.customer) if x}
    for path in t.operator_files:
        seed, op_problems = load_operator(path)
        problems.extend(op_problems)
        if seed is not None:
            tenants = (tenants or set()) | {seed.operator.tenant_id, *(m.tenant_id for m in seed.mvnos)}
    if t.rules:
        rule_problems: list[Any] = []
        book = load_rules(t.rules, rule_problems)
        problems.extend(rule_problems)
        summary["rules"] = {"barring": len(book.barring_table.rules), "credit_alert_thresholds": len(book.alert_table.thresholds),
                            "lifecycles": len(book.lifecycle_models)}
        if plan_set is not None:
            problems.extend(book.dangling_references(plan_set.destinations.keys(), plan_set.tariff_plans.keys(), tenants))
    if t.charge_rules:
        from engine.billing.chargerules import load_charge_rules
        from engine.billing.profile import load_profiles as load_billing_profiles

        # tenants and charge codes are checked against plans/billing when the plans are validated with the rules
        billing = next((p / "billing" for p in t.plans if p.is_dir() and (p / "billing").is_dir()), None)
        profiles = None
        if billing is not None:
            profiles, profile_problems = load_billing_profiles(billing)
            problems.extend(profile_problems)
        for directory in dict.fromkeys(t.charge_rules):
            problems.extend(load_charge_rules(directory, profiles)[1])
            summary.setdefault("charge_rule_dirs", []).append(str(directory))
    for directory in t.mediation:
        from engine.mediation import validate_directory

        found = validate_directory(directory)
        problems.extend(found)
        summary.setdefault("mediation_dirs", []).append(str(directory))
    if t.vouchers:
        from engine.vouchers import load_profiles

        catalogue = load_profiles(t.vouchers, tenants)
        problems.extend(catalogue.problems)
        summary["voucher_profiles"] = len(catalogue.profiles)
    valid = not problems and (not t.plans or plan_set is not None)
    return valid, sorted(problems), summary


def plan_set_file_count(paths: list[Path]) -> int:
    """How many files the plan set of ``paths`` has, counted as an upload carries them (``plan_files``: the plan files
    and the prefix files), so that `plans validate`, `bootstrap` and the upload's audit entry say the same number."""
    from engine.plans.loader import plan_files

    return sum(len(plan_files(p)) if p.is_dir() else 1 for p in paths)


def run_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    valid, problems, summary = validate_paths(args.paths)
    if args.format == "json":
        out.write(json.dumps({"valid": valid, "problems": [p.as_dict() for p in problems]}, indent=2) + "\n")
    elif problems:
        out.write(format_problems(problems, "text") + "\n")
        out.write(f"{len(problems)} problem(s) in {len({p.file for p in problems})} file(s)\n")
    else:
        parts = []
        if "plans" in summary:
            counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary["plans"].items())
            extra = summary["files"] - summary["plan_files"]  # the prefix files plan files name
            parts.append(f"{summary['files']} plan set files ({summary['plan_files']} plan files, {extra} prefix files: {counts})")
        if "rules" in summary:
            r = summary["rules"]
            parts.append(f"{r['barring']} barring rules, {r['credit_alert_thresholds']} credit alert thresholds, {r['lifecycles']} lifecycles")
        if "mediation_dirs" in summary:
            parts.append(f"{len(summary['mediation_dirs'])} mediation folder(s)")
        if "charge_rule_dirs" in summary:
            parts.append(f"{len(summary['charge_rule_dirs'])} charge rule folder(s)")
        if "voucher_profiles" in summary:
            parts.append(f"{summary['voucher_profiles']} voucher profiles")
        out.write("valid: " + "; ".join(parts) + "\n")
    return EXIT_VALID if valid else EXIT_INVALID


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
    from engine.money import format_amount
    from engine.plans import compile_plan_set, load_plan_set
    from engine.rating.whatif import what_if_paths
    from engine.replay import load_assignments

    out = out or sys.stdout
    if not args.active:
        return _what_if_on_server(args, out)
    active_set, problems = load_plan_set(args.active)
    if active_set is None:
        sys.stderr.write("active plan set is invalid:\n" + format_problems(problems) + "\n")
        return EXIT_INVALID
    assign_problems: list[Any] = []
    assignments = load_assignments(Path(args.subscribers), assign_problems) if args.subscribers else None
    if assign_problems:
        sys.stderr.write(format_problems(assign_problems) + "\n")
        return EXIT_INVALID
    # the assignments answer for a whole chunk at once (Assignments.plans_of_rows)
    report = what_if_paths(_cdr_rows(args.cdrs), args.candidate, compile_plan_set(active_set), assignments)
    if not report.ok:
        sys.stderr.write("candidate plan set is invalid:\n" + format_problems(report.problems) + "\n")
        return EXIT_INVALID
    if args.format == "json":
        out.write(json.dumps({"lines": [x.as_dict() for x in report.lines],
                              "difference": {c: format_amount(m, c) for c, m in sorted(report.differences().items())},
                              "rejected": report.rejected}, indent=2) + "\n")
        return EXIT_VALID
    out.write(f"{'plan':<24} {'service':<14} {'cdrs':>7} {'active':>14} {'candidate':>14} {'difference':>14}\n")
    for x in report.lines:
        out.write(f"{x.plan_id:<24} {x.service:<14} {x.cdrs:>7} {format_amount(x.active_micros, x.currency):>14} "
                  f"{format_amount(x.candidate_micros, x.currency):>14} {format_amount(x.difference_micros, x.currency):>14} "
                  f"{x.currency}\n")
    totals = ", ".join(f"{format_amount(m, c)} {c}".rstrip() for c, m in sorted(report.differences().items())) or "0.00"
    out.write(f"total difference {totals}\n")
    return EXIT_VALID


def _what_if_on_server(args: argparse.Namespace, out: TextIO) -> int:
    """The candidate folder uploaded as a new version and compared with the server's active one on the file's CDRs."""
    from clients.commandkit import client_from
    from clients.services.mediation import cdr_message
    from engine.cdr import CdrReject, read_cdrs
    from engine.money import format_amount
    from engine.plans.loader import plan_files

    folder = Path(args.candidate[0])
    if len(args.candidate) != 1 or not folder.is_dir():
        raise SystemExit("--candidate: one plan folder against a server (it is uploaded); give --active PATH to compare offline")
    if args.subscribers:
        raise SystemExit("--subscribers: offline only (the server prices each CDR with its subscriber's plan); add --active PATH")
    with open(args.cdrs, encoding="utf-8", newline="") as stream:
        rows = list(read_cdrs(stream))
    cdrs = [cdr_message(r) for r in rows if not isinstance(r, CdrReject)]
    with client_from(args) as rb:
        plans = _subscriber_plans(rb, {c.a_number for c in cdrs if c.a_number})
        version = rb.plans.upload(plan_files(folder))
        print(f"candidate {folder} uploaded as version {version.version} (not activated)", file=sys.stderr)
        reply = rb.plans.what_if(version.version, cdrs, assignments=plans)
    lines = [{"plan": x.tariff_plan, "service": mpb_service(x.service), "cdrs": x.cdrs, "currency": x.active.currency or x.candidate.currency,
              "active": x.active.amount_micros, "candidate": x.candidate.amount_micros, "difference": x.difference.amount_micros,
              "active_unrated": x.active_unrated, "candidate_unrated": x.candidate_unrated} for x in reply.lines]
    rejected = reply.rejected + sum(1 for r in rows if isinstance(r, CdrReject))
    if args.format == "json":
        out.write(json.dumps({"active_version": reply.active_version, "candidate_version": reply.candidate_version,
                              "lines": lines, "rejected": rejected}, indent=2) + "\n")
        return EXIT_VALID
    out.write(f"active version {reply.active_version}, candidate version {reply.candidate_version}\n")
    out.write(f"{'plan':<24} {'service':<14} {'cdrs':>7} {'active':>14} {'candidate':>14} {'difference':>14}\n")
    for x in lines:
        c = x["currency"]
        out.write(f"{x['plan']:<24} {x['service']:<14} {x['cdrs']:>7} {format_amount(x['active'], c):>14} "
                  f"{format_amount(x['candidate'], c):>14} {format_amount(x['difference'], c):>14} {c}"
                  + (f"  (unrated: {x['active_unrated']} active, {x['candidate_unrated']} candidate)"
                     if x["active_unrated"] or x["candidate_unrated"] else "") + "\n")
    if rejected:
        out.write(f"{rejected} CDR(s) rejected (not rated by either)\n")
    return EXIT_VALID


def _subscriber_plans(rb: Any, numbers: set[str]) -> dict[str, str]:
    """Each calling number's tariff plan, from the subscriber store (WhatIf prices a CDR by the plan it is given)."""
    import grpc

    plans: dict[str, str] = {}
    for number in sorted(numbers):
        try:
            plans[number] = rb.subscribers.get(msisdn=number).tariff_plan
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise  # a number nobody has stays unassigned: unrated on both sides, and counted so
    return plans


def mpb_service(number: int) -> str:
    from billing.v1 import mediation_pb2

    return mediation_pb2.CdrServiceKind.Name(number).removeprefix("CDR_SERVICE_KIND_").lower()


def run_import_cgrates(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from engine.currencies import is_currency
    from engine.plans import load_plan_set
    from engine.plans.cgrates import csv_problem, import_cgrates

    out = out or sys.stdout
    if not is_currency(args.currency):
        sys.stderr.write(f"--currency {args.currency!r} is not an ISO 4217 currency code\n")
        return EXIT_INVALID
    imported = import_cgrates(Path(args.folder), args.tenant, args.currency)
    if imported.problems:
        sys.stderr.write("\n".join(csv_problem(p) for p in imported.problems) + "\n")
        sys.stderr.write(f"not imported: {len(imported.problems)} problem(s); nothing written\n")
        return EXIT_INVALID
    target = Path(args.out)
    for rel, text in sorted(imported.files.items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    plan_set, problems = load_plan_set([target])
    for p in imported.unmapped:
        out.write(f"not mapped: {csv_problem(p)}\n")
    if plan_set is None:
        sys.stderr.write("the imported plan files do not validate:\n" + format_problems(problems) + "\n")
        return EXIT_INVALID
    out.write(f"imported {len(imported.files)} plan files into {target} ({len(plan_set.tariff_plans)} tariff plans, "
              f"{len(plan_set.rates)} rates, {len(plan_set.destinations)} destination groups); "
              f"{len(imported.unmapped)} item(s) not mapped exactly\n")
    return EXIT_VALID


def _cdr_rows(path: str) -> Any:
    """The rows of a normalised CDR file in the layout's column order (the evaluator reads them as they are), in chunks."""
    from engine.csvrows import CdrFile

    return CdrFile(path)
