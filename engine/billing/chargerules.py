"""One-off charges raised by events, declared as rules in ``rules/billing/*.yaml`` (``kind: charge_rules``).

A rule names a tenant, an event (``engine.billing.profile.CHARGE_EVENTS``) and a charge of that tenant's
catalogue (``one_off_charges`` of ``plans/billing/<tenant>.yaml``)::

    kind: charge_rules
    rules:
      - id: CR_MNO_LATE_PAYMENT
        tenant: mno
        when: invoice_overdue
        charge: OC_PENALTY

Every problem of every file is collected, each at its file:line:col (an unknown event, a charge the tenant's
catalogue lacks, a tenant without a billing profile, an id or a rule declared twice); the server does not start
with one.  The charge is raised in the transaction that records the event (the invoice turning overdue, the
assignment), with the catalogue's amount and tax category, and billed like a CSR's on the account's next bill.
Its id is derived from the event, so the same event never raises it twice: a second scheduler marking the same
invoices overdue fails on that id and rolls back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Mapping

from engine.billing.model import OneOffCharge
from engine.billing.profile import CHARGE_EVENTS, BillingProfile, ChargeRule, ChargeType
from engine.yamlio import Fields, MarkedList, MarkedMap, Mark, Problem, load_file, yaml_files

KIND = "charge_rules"
RULE_ID = re.compile(r"^CR_[A-Z0-9_]{1,60}$")


def rule_charge(event: str, kind: ChargeType, tenant_id: str, account_id: str, currency: str, day: date, occurrence: str,
                subscriber_id: str = "", description: str = "") -> OneOffCharge:
    """The charge ``kind`` raised by ``event``; ``occurrence`` names the event (an invoice id, an assignment)."""
    digest = hashlib.sha256(f"{tenant_id}\x00{event}\x00{kind.code}\x00{occurrence}".encode()).hexdigest()[:32]
    return OneOffCharge("oc_" + digest, tenant_id, account_id, kind.code, description or kind.name, kind.amount_micros, currency,
                        kind.tax_category, day, subscriber_id, f"rule:{event}")


def load_charge_rules(folder: Path | str, profiles: Mapping[str, BillingProfile] | None) -> tuple[dict[str, BillingProfile], list[Problem]]:
    """The rules of ``folder``'s files checked against the tenants' billing profiles; the profiles come back with their
    rules.  ``None`` (``rulebill plans validate rules/`` without plans/billing) or no profile at all (no tenant bills:
    the billing area is not set up, a plans folder without billing/) checks the rules' shape only."""
    if not profiles:
        profiles = None
    problems: list[Problem] = []
    rules: dict[str, list[ChargeRule]] = {}
    ids: dict[str, Mark] = {}
    base = Path(folder)
    for path in yaml_files([base]) if base.exists() else []:
        if path.name.lower().startswith("readme"):
            continue
        doc = load_file(path, problems, display=str(path))
        if doc is None:
            continue
        if not isinstance(doc, MarkedMap) or doc.get("kind") != KIND:
            mark = doc.mark_of("kind") if isinstance(doc, MarkedMap) else Mark(str(path), 1, 1)
            problems.append(Problem.at(mark, "rule.unknown-kind", f"a file of rules/billing has kind: {KIND}"))
            continue
        f = Fields(doc, KIND, problems)
        f.optional("kind", str)
        nodes = f.required("rules", list) or MarkedList()
        f.done()
        for i, node in enumerate(nodes):
            rule = _rule(node, f"rules[{i}]", nodes.mark_of(i), profiles, ids, problems)
            if rule is None:
                continue
            tenant, found = rule
            mine = rules.setdefault(tenant, [])
            if any((r.when, r.charge) == (found.when, found.charge) for r in mine):
                problems.append(Problem.at(node.mark, "id.duplicate", f"rules[{i}] ({found.rule_id}): {tenant} already raises "
                                                                      f"{found.charge} on {found.when}"))
                continue
            mine.append(found)
    out = {t: replace(p, charge_rules=tuple(rules.get(t, ()))) for t, p in (profiles or {}).items()}
    return out, sorted(problems)


def _rule(node: object, what: str, fallback: Mark, profiles: Mapping[str, BillingProfile] | None, ids: dict[str, Mark],
          problems: list[Problem]) -> tuple[str, ChargeRule] | None:
    rf = Fields(node, what, problems, fallback=fallback)
    if not rf.ok:
        return None
    rule_id = rf.required("id", str) or ""
    tenant = rf.required("tenant", str) or ""
    when = rf.required("when", str) or ""
    code = rf.required("charge", str) or ""
    rf.optional("description", str)
    rf.done()
    ok = bool(rule_id and tenant and when and code)
    if rule_id and not RULE_ID.match(rule_id):
        problems.append(Problem.at(rf.node.mark_of("id"), "value.id", f"{what}.id: {rule_id!r} is not CR_ followed by A-Z, 0-9, _"))
        ok = False
    elif rule_id in ids:
        first = ids[rule_id]
        problems.append(Problem.at(rf.node.mark_of("id"), "id.duplicate", f"{what}.id: {rule_id} is declared already at "
                                                                          f"{first.file}:{first.line}"))
        ok = False
    elif rule_id:
        ids[rule_id] = rf.node.mark_of("id")
    if when and when not in CHARGE_EVENTS:
        problems.append(Problem.at(rf.node.mark_of("when"), "value.enum", f"{what}.when: {when!r} is not one of: "
                                                                          f"{', '.join(sorted(CHARGE_EVENTS))}"))
        ok = False
    if profiles is not None and tenant:
        profile = profiles.get(tenant)
        if profile is None:
            problems.append(Problem.at(rf.node.mark_of("tenant"), "rule.unknown-tenant", f"{what}.tenant: {tenant} has no billing "
                                                                                         f"profile (plans/billing/)"))
            ok = False
        elif code and code not in profile.charges:
            problems.append(Problem.at(rf.node.mark_of("charge"), "ref.dangling", f"{what}.charge: {code!r} is not in the "
                                                                                  f"one_off_charges of {tenant}'s billing profile"))
            ok = False
    return (tenant, ChargeRule(when, code, rule_id)) if ok else None
