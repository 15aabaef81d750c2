"""One-off charges raised by events, declared as rules in ``rules/billing/*.yaml`` (``kind: charge_rules``).

A rule names a tenant, an event (``engine.billing.profile.CHARGE_EVENTS``) and a charge of that tenant's
catalogue (``one_off_charges`` of ``plans/billing/<tenant>.yaml``)::

    kind: charge_rules
    rules:
      - id: CR_MNO_LATE_PAYMENT
        tenant: mno
        when: invoice_overdue
        charge: OC_PENALTY
        min_due: "5.00"              # optional: only when at least this much is left to pay on the invoice
      - id: CR_MNO_PLAN_CHANGE
        tenant: mno
        when: plan_changed
        charge: OC_PLAN_CHANGE
        plans: [TP_SMART_S]          # optional: only when the subscriber's plan (after the change) is one of these

Conditions (all must hold; a rule without any raises on every such event of its tenant): ``plans`` (the
subscriber's tariff plan; on events about a subscriber), ``bundles`` (the bundle bought; ``bundle_bought`` only),
``min_due`` (the amount still owed on the invoice, in the profile's currency; ``invoice_overdue`` only).

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

from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from engine.billing.model import AccountStatus, OneOffCharge
from engine.billing.profile import CHARGE_EVENTS, SUBSCRIBER_EVENTS, BillingProfile, ChargeRule, ChargeType
from engine.money import AmountError, parse_amount
from engine.yamlio import Fields, MarkedList, MarkedMap, Mark, Problem, load_file, yaml_files

KIND = "charge_rules"
RULE_ID = re.compile(r"^CR_[A-Z0-9_]{1,60}$")
PLAN_ID = re.compile(r"^TP_[A-Z0-9_]{1,60}$")
BUNDLE_ID = re.compile(r"^BN_[A-Z0-9_]{1,60}$")
MAX_LISTED = 100


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
    plans = _ids(rf, "plans", PLAN_ID, "tariff plan ids (TP_...)", what, problems)
    bundles = _ids(rf, "bundles", BUNDLE_ID, "bundle ids (BN_...)", what, problems)
    min_due = _amount(rf, "min_due", what, problems)
    rf.done()
    ok = bool(rule_id and tenant and when and code) and None not in (plans, bundles, min_due)
    if when in CHARGE_EVENTS:
        for name, value, fits in (("plans", plans, when in SUBSCRIBER_EVENTS), ("bundles", bundles, when == "bundle_bought"),
                                  ("min_due", min_due, when == "invoice_overdue")):
            if value and not fits:
                problems.append(Problem.at(rf.node.mark_of(name), "rule.condition", f"{what}.{name}: a {when} rule cannot have this "
                                                                                    f"condition (see rules/billing/README.md)"))
                ok = False
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
    return (tenant, ChargeRule(when, code, rule_id, plans or (), bundles or (), min_due or 0)) if ok else None


def _ids(rf: Fields, name: str, pattern: re.Pattern[str], what_ids: str, what: str, problems: list[Problem]) -> tuple[str, ...] | None:
    """An optional list condition; None when it is bad (reported)."""
    raw = rf.optional(name, list)
    if raw is None:
        return ()
    mark = rf.node.mark_of(name)
    bad = [x for x in raw if not isinstance(x, str) or not pattern.match(x)]
    if bad or not raw or len(raw) > MAX_LISTED:
        problems.append(Problem.at(mark, "rule.condition", f"{what}.{name}: 1 to {MAX_LISTED} {what_ids}"
                                                           + (f"; not {bad[0]!r}" if bad else "")))
        return None
    if len(set(raw)) != len(raw):
        problems.append(Problem.at(mark, "rule.condition", f"{what}.{name}: an id is listed twice"))
        return None
    return tuple(raw)


def _amount(rf: Fields, name: str, what: str, problems: list[Problem]) -> int | None:
    raw = rf.optional(name, str)
    if raw is None:
        return 0
    try:
        micros = parse_amount(raw)
    except AmountError as exc:
        problems.append(Problem.at(rf.node.mark_of(name), "value.amount", f"{what}.{name}: {exc}"))
        return None
    if micros <= 0:
        problems.append(Problem.at(rf.node.mark_of(name), "value.amount", f"{what}.{name}: a positive amount such as \"5.00\""))
        return None
    return micros


class SubscriberEventCharges:
    """The charges of ``plan_changed``, ``sim_swapped`` and ``subscriber_deactivated`` rules, raised by the subscriber desk in the
    transaction that changes the subscriber (``billing_of`` gives the billing store on that transaction).  Raised on
    the account the subscriber is billed to then (none: nothing), dated that day in the account's time zone; the id
    is derived from the subscriber and the instant of the change."""

    def __init__(self, profiles: Mapping[str, BillingProfile], billing_of: Callable[[Any], Any]) -> None:
        self.profiles = profiles
        self.billing_of = billing_of

    def __call__(self, uow: Any, event: str, before: Any, after: Any, now: datetime) -> None:
        profile = self.profiles.get(after.tenant_id)
        if profile is None or not any(r.when == event for r in profile.charge_rules):
            return
        kinds = profile.rules_for(event, plan=after.tariff_plan)
        if not kinds:
            return
        billing = self.billing_of(uow)
        assignment = billing.open_assignment(after.tenant_id, after.subscriber_id)
        account = billing.get_account(after.tenant_id, assignment.account_id) if assignment is not None else None
        if account is None or account.status is AccountStatus.CLOSED:
            return
        day = now.astimezone(ZoneInfo(account.time_zone)).date()
        what = f" ({before.tariff_plan} -> {after.tariff_plan})" if event == "plan_changed" else ""
        for kind in kinds:
            billing.add_charge(rule_charge(event, kind, account.tenant_id, account.account_id, account.currency, day,
                                           f"{after.subscriber_id}@{now.isoformat()}", after.subscriber_id, f"{kind.name}{what}"[:200]))
