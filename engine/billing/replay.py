"""QA replay of bills: a golden folder's accounts, CDRs and steps run through the product's own bill runs,
credit notes and re-bills (on the in-memory store), compared with the invoices it expects.

A bill case is a folder with ``accounts.yaml``::

    plans/                the plan set (tariff plans, bundles, discounts, taxes ...)
    profile.yaml          the seller: a billing profile (kind: billing_profile)
    accounts.yaml         accounts, their subscribers' days and plans, and the steps to run
    cdrs.cdr.csv          CDRs in the normalised format, rated with plans/ (bundle counters per calendar month)
    expected.yaml         the documents the steps issue (rewrite with ``rulebill replay --update``)
    README.md             what the case shows, with the arithmetic

``accounts.yaml``::

    accounts:
      - id: ACC-1
        name: Jeanne Martin
        address: {lines: ["5 rue Victor Hugo"], city: Lyon, postal_code: "69001", country: FR}
        anchor_day: 1                  # time_zone (Europe/Paris), currency (the profile's), vat_id, tax_exemption,
        subscribers:                   # discount_plans, language, payment_terms_days as on an account
          - msisdn: "33612000001"
            activated: 2026-03-10      # deactivated: 2026-04-20
            plans: [{from: 2026-03-10, plan: TP_SMART_M}, {from: 2026-03-20, plan: TP_SMART_S}]
            add_ons: [{bundle: BN_ADDON_DATA_5GB, at: "2026-03-15T14:00:00Z"}]   # bought then (BuyAddOn's path);
                                       # cancelled: "2026-03-20T09:00:00Z" cancels it then (CancelAddOn's path)
    steps:
      - {run: 2026-04-01}                                   # the cycle date's bill run (all accounts due)
      - {charge: OC_ACTIVATION, account: ACC-1, day: 2026-03-10}
      - {final: ACC-1, day: 2026-04-21}
      - {on_demand: ACC-1, interim: true, day: 2026-04-11}   # "bill now": an interim bill up to the day before
      - {credit_note: RT-000001, reason: "...", lines: [{line: "3", amount: "2.00"}]}   # no lines: all of it
      - {rerate: plans_v2}                                   # rate the CDRs again with another plan folder
      - {rebill: RT-000001, reason: "..."}
      - {rebill_rerated: 2026-03-01, to: 2026-04-01, reason: "..."}   # every issued invoice whose CDRs' charges changed
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from engine.billing.catalogue import BillingCatalogue
from engine.billing.codec import unpack
from engine.billing.cycles import local_midnight
from engine.billing.desk import BillingDesk
from engine.billing.memory import BillingData, MemoryBillingStore
from engine.billing.model import Account, AccountStatus, Assignment, BundleUse, DocumentKind, Invoice, RatedUsage
from engine.billing.ports import RunMode, SubscriberFacts
from engine.billing.profile import BillingProfile, load_profile_files, parse_address
from engine.billing.runs import RunRequest
from engine.billing.ubl import percent_text
from engine.cdr import CdrReject, MediatedCdr, read_cdrs
from engine.clock import FixedClock
from engine.currencies import minor_units
from engine.errors import DomainError
from engine.identity import SYSTEM
from engine.money import AmountError, format_micros, parse_amount
from engine.plans import compile_plan_set, load_plan_set
from engine.plans.model import PlanSet
from engine.billing.addons import OPEN, PLAN_CHANGE, add_on_use_name, bill_cycles_of, grants_of, monthly_stop, offered_add_ons, stop_add_ons
from engine.rating import Evaluator
from engine.rating.addons import AddOnWallets, monthly_counter_cycle
from engine.rating.usage import Usage, cycle_of
from engine.yamlio import Fields, MarkedList, MarkedMap, Problem, format_problems, load_file

ACCOUNTS_FILE = "accounts.yaml"
EXPECTED_FILE = "expected.yaml"
PROFILE_FILE = "profile.yaml"
CDR_FILE = "cdrs.cdr.csv"


def is_bill_case(folder: Path | str) -> bool:
    return (Path(folder) / ACCOUNTS_FILE).is_file()


@dataclass
class BillReplayResult:
    folder: Path
    problems: list[Problem] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    xml: dict[str, bytes] = field(default_factory=dict)       # number -> UBL document (tests validate every one)
    diffs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def count(self) -> int:
        return len(self.documents)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.diffs

    def render(self) -> str:
        if self.problems:
            return f"FAIL {self.name}: the case cannot run\n" + format_problems(self.problems)
        if not self.diffs:
            return f"ok   {self.name}: {self.count} documents match"
        return "\n".join([f"FAIL {self.name}: {len(self.diffs)} difference(s)", *("  " + d for d in self.diffs)])


def _money(micros: int, currency: str) -> str:
    return format_micros(micros, minor_units(currency))


def document_dict(inv: Invoice, bundles: Sequence[BundleUse] = ()) -> dict[str, Any]:
    """The stable, readable form expected.yaml keeps: one text per line (with the line's description), totals as
    amounts, the due date, and the bill's bundle use (allowance and used) when it has any."""
    cur = inv.currency
    lines = []
    for ln in inv.lines:
        when = f" {ln.period_start}..{ln.period_end - timedelta(days=1)}" if ln.period_start and ln.period_end else ""
        who = f" +{ln.msisdn}" if ln.msisdn else ""
        ref = f" (credits line {ln.ref_line_id})" if ln.ref_line_id else ""
        lines.append(f"{ln.line_id} {ln.charge_type.value} {ln.item_id}{who}{when} x{ln.quantity} = {_money(ln.amount_micros, cur)} "
                     f"[{ln.tax.code} {percent_text(ln.tax.percent)}]{ref} {json.dumps(ln.description, ensure_ascii=False)}")
    t = inv.totals
    out: dict[str, Any] = {
        "number": inv.number, "kind": inv.kind.value, "account": inv.account_id,
        "period": f"{inv.period_start}..{inv.period_end - timedelta(days=1)}", "issue_date": str(inv.issue_date),
        "due_date": inv.due_date.isoformat() if inv.due_date else None,   # a credit note has none
        "lines": lines,
        "totals": {"lines": _money(t.line_extension, cur), "allowances": _money(t.allowances, cur), "charges": _money(t.charges, cur),
                   "net": _money(t.tax_exclusive, cur), "tax": _money(t.tax, cur), "gross": _money(t.tax_inclusive, cur),
                   "prepaid": _money(t.prepaid, cur), "payable": _money(t.payable, cur)},
    }
    if bundles:
        out["bundles"] = [f"+{u.msisdn} {u.bundle_id}{f' {u.cycle}' if u.cycle else ''}: {u.used} of {u.allowance} {u.unit} used"
                          f" {json.dumps(u.name, ensure_ascii=False)}" for u in bundles]
    if inv.reference_id:
        out["reference"] = inv.reference_id
    return out


class _Case:
    def __init__(self, folder: Path, result: BillReplayResult) -> None:
        self.folder = folder
        self.result = result
        self.problems = result.problems

    def load(self) -> tuple[PlanSet, BillingProfile, MarkedMap] | None:
        plan_set, problems = load_plan_set([self.folder / "plans"], root=self.folder)
        self.problems.extend(problems)
        profiles, problems = load_profiles_file(self.folder / PROFILE_FILE)
        self.problems.extend(problems)
        doc = load_file(self.folder / ACCOUNTS_FILE, self.problems, display=str(self.folder / ACCOUNTS_FILE))
        if plan_set is None or not profiles or not isinstance(doc, MarkedMap):
            if not profiles and not problems:
                self.problems.append(Problem(str(self.folder / PROFILE_FILE), 1, 1, "file.missing", "a bill case needs its seller's profile"))
            return None
        return plan_set, next(iter(profiles.values())), doc


def load_profiles_file(path: Path) -> tuple[dict[str, BillingProfile], list[Problem]]:
    """The profile of a bill case's ``profile.yaml`` (none when the file is missing)."""
    return load_profile_files([path]) if path.is_file() else ({}, [])


def _date(f: Fields, key: str, problems: list[Problem], required: bool = False) -> date | None:
    raw = f.required(key, (date, str)) if required else f.optional(key, (date, str))
    if raw is None or isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(Problem.at(f.node.mark_of(key), "value.date", f"{f.what}.{key}: {raw!r} is not a date (YYYY-MM-DD)"))
        return None


def _at(day: date, tz: ZoneInfo, hour: int = 0) -> datetime:
    return local_midnight(day, tz) + timedelta(hours=hour)


def run_bill_case(folder: Path | str) -> BillReplayResult:
    folder = Path(folder)
    result = BillReplayResult(folder)
    case = _Case(folder, result)
    loaded = case.load()
    if loaded is None:
        return result
    plan_set, profile, doc = loaded
    problems = result.problems
    tenant = profile.tenant_id
    data = BillingData()
    store = MemoryBillingStore(data)
    clock = FixedClock(datetime(2000, 1, 1, tzinfo=timezone.utc))
    compiled = compile_plan_set(plan_set)
    catalogue = BillingCatalogue.from_plan_set(plan_set, 1, compiled)
    catalogues: dict[str, BillingCatalogue] = {"": catalogue}
    # one worker: batches in order, so a case's invoice numbers follow its accounts' order on every replay
    desk = BillingDesk.build(store, clock, {tenant: profile}, lambda t, at: catalogues[""], workers=1)
    principal = replace(SYSTEM, tenant_id=tenant, subject="replay")
    f = Fields(doc, "accounts file", problems)
    raw_accounts = f.required("accounts", list) or MarkedList()
    raw_steps = f.optional("steps", list, default=MarkedList()) or MarkedList()
    f.done()
    msisdn_tz: dict[str, ZoneInfo] = {}
    msisdn_anchor: dict[str, int] = {}   # the bill cycle's anchor day of each number's account (rating's counter cycles)
    plans_of: dict[str, list[tuple[date, str]]] = {}
    purchases: list[tuple[str, str, datetime, Any, datetime | None]] = []   # (subscriber, bundle, when, where declared, cancelled)
    first_day = date.max
    for i, node in enumerate(raw_accounts):
        af = Fields(node, f"accounts[{i}]", problems, fallback=raw_accounts.mark_of(i))
        if not af.ok:
            continue
        account_id = af.required("id", str) or ""
        tz_name = af.optional("time_zone", str, default="Europe/Paris")
        tz = ZoneInfo(tz_name)
        address = parse_address(af.required("address", dict), f"accounts[{i}].address", problems, af.mark) if "address" in af.node else None
        if "address" not in af.node:
            af.seen.add("address")
        account = Account(tenant, account_id, af.required("name", str) or "", address, af.optional("currency", str, default=profile.currency),
                          af.optional("anchor_day", int, default=1), tz_name, af.optional("language", str, default="en"),
                          email=af.optional("email", str, default=""), vat_id=af.optional("vat_id", str, default=""),
                          payment_terms_days=af.optional("payment_terms_days", int, default=profile.terms_days),
                          tax_exemption=af.optional("tax_exemption", str, default=""),
                          discount_plans=tuple(af.optional("discount_plans", list, default=[]) or ()),
                          status=AccountStatus.ACTIVE, create_time=datetime(2000, 1, 1, tzinfo=timezone.utc))
        subs = af.optional("subscribers", list, default=MarkedList()) or MarkedList()
        af.done()
        data.accounts[(tenant, account_id)] = account
        for k, snode in enumerate(subs):
            sf = Fields(snode, f"accounts[{i}].subscribers[{k}]", problems, fallback=subs.mark_of(k))
            if not sf.ok:
                continue
            msisdn = str(sf.required("msisdn", (str, int)) or "")
            activated = _date(sf, "activated", problems, required=True)
            deactivated = _date(sf, "deactivated", problems)
            assigned = _date(sf, "assigned", problems) or activated
            left = _date(sf, "left", problems)
            raw_plans = sf.required("plans", list) or MarkedList()
            raw_add_ons = sf.optional("add_ons", list, default=MarkedList()) or MarkedList()
            sf.done()
            plans: list[tuple[date, str]] = []
            for n, pnode in enumerate(raw_plans):
                pf = Fields(pnode, f"{sf.what}.plans[{n}]", problems, fallback=raw_plans.mark_of(n))
                start = _date(pf, "from", problems, required=True)
                plan = pf.required("plan", str)
                pf.done()
                if plan and plan not in plan_set.tariff_plans:
                    problems.append(Problem.at(pf.mark, "ref.dangling", f"tariff plan {plan!r} is not in plans/"))
                if start and plan:
                    plans.append((start, plan))
            if activated is None or assigned is None or not plans:
                continue
            sid = f"sub-{msisdn}"
            data.subscribers[sid] = SubscriberFacts(sid, tenant, msisdn, _at(activated, tz, 10),
                                                    _at(deactivated, tz, 18) if deactivated else None,
                                                    tuple((_at(d, tz, 9), p) for d, p in sorted(plans)))
            data.assignments.append(Assignment(tenant, account_id, sid, msisdn, _at(assigned, tz), _at(left, tz) if left else None))
            msisdn_tz[msisdn] = tz
            msisdn_anchor[msisdn] = account.anchor_day
            plans_of[msisdn] = sorted(plans)
            first_day = min(first_day, assigned)
            purchases.extend(_purchases(raw_add_ons, sf.what, sid, problems))
    if problems:
        return result
    cancels: list[tuple[datetime, str, str, Any]] = []   # (when, purchase id, bundle, where declared)
    # a plan change stops the monthly add-ons the new plan does not offer (StopAddOns, in the change's transaction):
    # in time order with the purchases
    changes = sorted((when, sid, plan) for sid, f in data.subscribers.items() for when, plan in f.plans[1:])
    for n, (sid, bundle, when, mark, cancelled) in enumerate(sorted(purchases, key=lambda x: x[2])):   # bought as BuyAddOn buys, before rating
        while changes and changes[0][0] <= when:
            _change_plan(store, tenant, catalogue, msisdn_tz, data, *changes.pop(0))
        clock._at = when  # noqa: SLF001 - the replay's own clock
        try:
            bought, _ = desk.add_ons.buy(principal, sid, bundle, f"replay-{n + 1}")
        except DomainError as exc:
            problems.append(Problem.at(mark, "replay.add-on", f"{bundle}: {exc.message}"))
            continue
        if cancelled is not None:
            cancels.append((cancelled, bought.purchase_id, bundle, mark))
    for change in changes:
        _change_plan(store, tenant, catalogue, msisdn_tz, data, *change)
    if problems:
        return result
    # rated with each cancelled add-on's grant ending at its cancel instant (as rating reads a cancelled purchase), then
    # cancelled through the desk: its units left are then those at the cancel instant, as the product's cancel reads them
    _rate(folder / CDR_FILE, plan_set, compiled, tenant, plans_of, msisdn_tz, msisdn_anchor, store.data, result,
          {pid: when for when, pid, _, _ in cancels})
    for n, (when, pid, bundle, mark) in enumerate(sorted(cancels)):
        clock._at = when  # noqa: SLF001 - the replay's own clock
        try:
            desk.add_ons.cancel(principal, pid, f"replay-cancel-{n + 1}")
        except DomainError as exc:
            problems.append(Problem.at(mark, "replay.add-on", f"{bundle}: cannot cancel: {exc.message}"))
    _add_on_use(store.data)
    if problems:
        return result
    default_tz = ZoneInfo("Europe/Paris")
    for i, snode in enumerate(raw_steps):
        sf = Fields(snode, f"steps[{i}]", problems, fallback=raw_steps.mark_of(i))
        if not sf.ok:
            continue
        try:
            _step(sf, desk, principal, tenant, clock, default_tz, catalogues, folder, plans_of, msisdn_tz, msisdn_anchor, result)
        except DomainError as exc:
            problems.append(Problem.at(sf.mark, "replay.step-failed", f"steps[{i}]: {exc.message}"))
        sf.done()
    docs = sorted(store.data.invoices.values(), key=lambda b: (b.invoice.create_time or datetime.min.replace(tzinfo=timezone.utc),
                                                               b.invoice.kind is DocumentKind.INVOICE, b.invoice.number))
    numbers = {b.invoice.invoice_id: b.invoice.number for b in docs}
    for b in docs:
        d = document_dict(b.invoice, [BundleUse(**x) for x in unpack(b.bill).get("bundles") or []])
        if "reference" in d:
            d["reference"] = numbers.get(d["reference"], d["reference"])
        result.documents.append(d)
        if b.document is not None:
            result.xml[b.invoice.number] = b.document
    return result


def _step(sf: Fields, desk: BillingDesk, principal: Any, tenant: str, clock: FixedClock, tz: ZoneInfo, catalogues: dict[str, BillingCatalogue],
          folder: Path, plans_of: dict[str, list[tuple[date, str]]], msisdn_tz: dict[str, ZoneInfo], msisdn_anchor: dict[str, int],
          result: BillReplayResult) -> None:
    problems = result.problems
    on = _date(sf, "day", problems)
    node = sf.node

    def at(day: date | None, hour: int = 8) -> None:
        if day is not None:
            clock._at = _at(day, tz, hour)  # noqa: SLF001 - the replay's own clock

    store: MemoryBillingStore = desk.uow  # type: ignore[assignment]

    def invoice_id(number: str) -> str:
        found = next((b.invoice.invoice_id for b in store.data.invoices.values() if b.invoice.number == number), None)
        if found is None:
            raise _ReplayError(f"no document numbered {number} (yet)")
        return found

    def run(request: RunRequest) -> None:
        last = None
        for last in desk.runs.start(principal, request):
            pass
        if last is not None and last.failures:
            raise _ReplayError("the bill run failed: " + "; ".join(f"{a}: {why}" for a, why in last.failures))

    if "run" in node:
        cycle = _date(sf, "run", problems)
        accounts = tuple(str(a) for a in (sf.optional("accounts", list, default=[]) or []))
        at(on or cycle)
        run(RunRequest(tenant, RunMode.MANUAL, cycle, accounts))
    elif "final" in node:
        at(on)
        run(RunRequest(tenant, RunMode.FINAL, None, (sf.optional("final", str) or "",)))
    elif "on_demand" in node:
        at(on)
        run(RunRequest(tenant, RunMode.ON_DEMAND, None, (sf.optional("on_demand", str) or "",),
                       interim=bool(sf.optional("interim", bool, default=False))))
    elif "charge" in node:
        code = sf.optional("charge", str) or ""
        account = sf.required("account", str) or ""
        amount = sf.optional("amount", (str, int))
        subscriber = sf.optional("msisdn", (str, int))
        description = sf.optional("description", str, default="")
        at(on, 12)
        try:
            micros = parse_amount(amount) if amount is not None else None
        except AmountError as exc:
            problems.append(Problem.at(node.mark_of("amount"), "value.amount", str(exc)))
            return
        desk.accounts.add_charge(principal, tenant, account, code, micros, description, f"sub-{subscriber}" if subscriber else "", on)
    elif "credit_note" in node:
        number = sf.optional("credit_note", str) or ""
        reason = sf.required("reason", str) or ""
        raw_lines = sf.optional("lines", list)
        at(on, 12)
        lines = None
        if raw_lines is not None:
            lines = []
            for n, item in enumerate(raw_lines):
                lf = Fields(item, f"{sf.what}.lines[{n}]", problems)
                line = str(lf.required("line", (str, int)) or "")
                amount = parse_amount(lf.required("amount", (str, int)) or "0")
                lf.done()
                lines.append((line, amount))
        desk.invoices.credit_note(principal, tenant, invoice_id(number), reason, lines)
    elif "rerate" in node:
        plans_dir = folder / (sf.optional("rerate", str) or "")
        plan_set, problems2 = load_plan_set([plans_dir], root=folder)
        problems.extend(problems2)
        if plan_set is None:
            return
        compiled = compile_plan_set(plan_set)
        _rate(folder / CDR_FILE, plan_set, compiled, tenant, plans_of, msisdn_tz, msisdn_anchor, store.data, result)
        catalogues[""] = BillingCatalogue.from_plan_set(plan_set, 2, compiled)
    elif "rebill" in node:
        number = sf.optional("rebill", str) or ""
        reason = sf.required("reason", str) or ""
        at(on, 12)
        desk.invoices.rebill(principal, tenant, invoice_id(number), reason)
    elif "rebill_rerated" in node:
        start, end = _date(sf, "rebill_rerated", problems), _date(sf, "to", problems, required=True)
        reason = sf.required("reason", str) or ""
        at(on, 12)
        if start is not None and end is not None:
            desk.invoices.rebill_rerated(principal, tenant, start, end, reason)
    else:
        problems.append(Problem.at(sf.mark, "replay.step", f"{sf.what}: a step is one of run, final, on_demand, charge, credit_note, "
                                                          "rerate, rebill, rebill_rerated"))
        return
    for key in ("run", "final", "on_demand", "interim", "charge", "credit_note", "rerate", "rebill", "rebill_rerated", "to", "accounts", "reason",
                "lines", "account", "amount", "msisdn", "description"):
        sf.seen.add(key)


def _change_plan(store: MemoryBillingStore, tenant: str, catalogue: BillingCatalogue, msisdn_tz: dict[str, ZoneInfo], data: BillingData,
                 when: datetime, sid: str, plan: str) -> None:
    """A case's plan change stops the subscriber's monthly add-ons the new plan does not offer (StopAddOns' rule)."""
    with store() as uow:
        stop_add_ons(uow, tenant, sid, when, PLAN_CHANGE, offered_add_ons(catalogue, plan, when, msisdn_tz[data.subscribers[sid].msisdn]))
        uow.commit()


class _ReplayError(DomainError):
    pass


def _purchases(raw: Any, what: str, sid: str, problems: list[Problem]) -> list[tuple[str, str, datetime, Any, datetime | None]]:
    out = []
    for n, node in enumerate(raw):
        af = Fields(node, f"{what}.add_ons[{n}]", problems, fallback=raw.mark_of(n))
        bundle = af.required("bundle", str) or ""
        when = _instant(af, "at", af.required("at", (str, datetime)), problems)
        cancelled = _instant(af, "cancelled", af.optional("cancelled", (str, datetime)), problems) if "cancelled" in af.node else None
        af.done()
        if when is None or ("cancelled" in af.node and cancelled is None):
            continue
        if cancelled is not None and cancelled <= when:
            problems.append(Problem.at(af.node.mark_of("cancelled"), "value.time", f"{af.what}.cancelled: after the purchase ({when.isoformat()})"))
            continue
        if bundle:
            out.append((sid, bundle, when, af.mark, cancelled))
    return out


def _instant(af: Fields, key: str, raw: Any, problems: list[Problem]) -> datetime | None:
    when = raw
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            when = None
    if not isinstance(when, datetime) or when.tzinfo is None:
        mark = af.node.mark_of(key) if key in af.node else af.mark
        problems.append(Problem.at(mark, "value.time", f"{af.what}.{key}: a time with its offset, e.g. \"2026-03-15T14:00:00Z\""))
        return None
    return when.astimezone(timezone.utc)


def _rate(path: Path, plan_set: PlanSet, compiled: Any, tenant: str, plans_of: dict[str, list[tuple[date, str]]],
          msisdn_tz: dict[str, ZoneInfo], msisdn_anchor: dict[str, int], target: BillingData, result: BillReplayResult,
          cancels: dict[str, datetime] | None = None) -> None:
    """Rate the case's CDRs into the (store's) usage ledger: the subscriber's plan of the CDR's local day, bundle
    counters per subscriber and bill cycle (the account's anchor day, the day in the plan's time zone, as
    ``RatingDesk.cycle_at`` keys them) starting at the plan's monthly allowances, as rating does; the counters
    become the bills' bundle use."""
    if not path.is_file():
        return
    rater = Evaluator(compiled)   # the one evaluator of every rating path
    usage = Usage(_NoCounters(), ())   # counters start at the plan's allowances, as rating's do
    cancels = cancels or {}
    # as rating reads them (store/addons.py): a one-off's grant, a monthly add-on's per bill cycle; a case's cancel
    # ends the grant where CancelAddOn will stop it
    bought = [g for p in target.add_ons.values() for g in grants_of(_cancelled(p, cancels.get(p.purchase_id)), _EARLIEST, OPEN)]
    keys: list[Any] = []
    ats: list[datetime | None] = []
    add_ons = AddOnWallets(usage, bought, keys, ats)   # the add-ons valid at each CDR's start, as RatingDesk gives them
    wallet_of = add_ons.rows_from(0)
    allowances_of: dict[tuple[str, str], dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as stream:
        for item in read_cdrs(stream):
            if isinstance(item, CdrReject):
                result.problems.append(Problem(str(path), item.line, 1, "cdr.rejected", item.reason))
                continue
            cdr: MediatedCdr = item
            tz = msisdn_tz.get(cdr.a_number)
            if tz is None:
                result.notes.append(f"CDR {cdr.cdr_id[:12]}: {cdr.a_number} is on no account")
                continue
            day = cdr.start_time.astimezone(tz).date()
            plan = ""
            for start, p in plans_of[cdr.a_number]:
                if start <= day:
                    plan = p
            plan = plan or plans_of[cdr.a_number][0][1]
            epoch = int(cdr.start_time.timestamp())
            version = compiled.plan(plan).version_at(epoch) if compiled.plan(plan) else None
            plan_day = version.clock.local_day(epoch) if version is not None else cdr.start_time.astimezone(timezone.utc).date()
            key = (cdr.a_number, cycle_of(plan_day, msisdn_anchor[cdr.a_number]))
            if key not in allowances_of:
                allowances = {b: compiled.bundles[b].allowance for b in (version.bundles if version else ())
                              if b in compiled.bundles and compiled.bundles[b].recurrence == "monthly"}
                for b, allowance in allowances.items():
                    usage.ensure((tenant, *key), b, allowance, compiled.bundles[b].unit)
                allowances_of[key] = allowances
            keys.append((tenant, *key))
            ats.append(cdr.start_time)
            rated = rater.rate_cdr(cdr, plan, wallet_of(len(keys) - 1, None))
            if not rated.rated:
                result.notes.append(f"CDR {cdr.cdr_id[:12]} {rated.status.value}: {rated.reason}")
                continue
            target.ledger_usage[(tenant, cdr.cdr_id)] = RatedUsage(cdr.cdr_id, cdr.a_number, cdr.start_time, rated.service, rated.destination,
                                                                   rated.charge_micros, rated.currency, rated.plan_id, 1, rated.units)
    add_ons.finish()
    target.add_on_left = {g.msisdn + g.cycle: usage.wallet(g.key).get(g.bundle_id, g.allowance) for g in bought}
    target.bundles = [BundleUse("", msisdn, bundle, f"{bundle} ({cycle})", "", allowance,
                                allowance - usage.wallet((tenant, msisdn, cycle))[bundle], compiled.bundles[bundle].unit, cycle)
                      for (msisdn, cycle), allowances in sorted(allowances_of.items()) for bundle, allowance in sorted(allowances.items())]
    _add_on_use(target)


def _add_on_use(target: BillingData) -> None:
    """The add-ons' use on the bills of the cycles they are valid in (after the monthly bundles' use), as the store's
    ``bundle_use`` reads it: again after the case's cancels, which shorten them."""
    mine = {id(b) for b in target.bundles if b.name.startswith(f"{b.bundle_id} (add-on,")}
    target.bundles = [b for b in target.bundles if id(b) not in mine]
    last = max((u.cycle for u in target.bundles), default="")   # an open monthly add-on: up to the last cycle rated
    target.bundles += [BundleUse("", p.msisdn, p.bundle_id, add_on_use_name(p.bundle_id, p.ends, p.monthly), "", p.allowance,
                                 p.allowance - target.add_on_left.get(p.msisdn + key, p.allowance), p.unit, cycle)
                       for p in sorted(target.add_ons.values(), key=lambda p: (p.msisdn, p.cycle)) for cycle in bill_cycles_of(p, last)
                       for key in [monthly_counter_cycle(int(p.cycle[1:]), cycle) if p.monthly else p.cycle]]


_EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _cancelled(p: Any, when: datetime | None) -> Any:
    """The purchase as rating reads it once the case cancels it at ``when`` (CancelAddOn's rule: engine.billing.addons)."""
    if when is None:
        return p
    return replace(p, cancel_time=when, valid_until=monthly_stop(p, when)) if p.monthly else replace(p, cancel_time=when)


class _NoCounters:
    """A usage repository with nothing stored yet: the replay's counters all start at their allowances."""

    def counters_of(self, keys: Any) -> dict[Any, Any]:
        return {}

    def balances_of(self, keys: Any) -> dict[Any, Any]:
        return {}


def replay_bill_case(folder: Path | str) -> BillReplayResult:
    folder = Path(folder)
    result = run_bill_case(folder)
    if result.problems:
        return result
    path = folder / EXPECTED_FILE
    if not path.exists():
        result.problems.append(Problem(str(path), 1, 1, "file.missing", "no expected documents; run with --update to create them"))
        return result
    import yaml

    expected = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    want = expected.get("documents", [])
    got = json.loads(json.dumps(result.documents, default=str))
    for i in range(max(len(want), len(got))):
        e = want[i] if i < len(want) else None
        a = got[i] if i < len(got) else None
        if e == a:
            continue
        if e is None:
            result.diffs.append(f"document #{i + 1}: not expected: {a.get('number') if a else '?'}")
            continue
        if a is None:
            result.diffs.append(f"document #{i + 1}: missing: {e.get('number')}")
            continue
        for key in sorted(set(e) | set(a)):
            if e.get(key) == a.get(key):
                continue
            if key == "lines":
                for k in range(max(len(e["lines"]), len(a["lines"]))):
                    le = e["lines"][k] if k < len(e["lines"]) else None
                    la = a["lines"][k] if k < len(a["lines"]) else None
                    if le != la:
                        result.diffs.append(f"{a.get('number')} line {k + 1}: expected {le!r}, actual {la!r}")
            else:
                result.diffs.append(f"{a.get('number')} {key}: expected {e.get(key)!r}, actual {a.get(key)!r}")
    return result


def update_bill_case(folder: Path | str) -> BillReplayResult:
    import yaml

    folder = Path(folder)
    result = run_bill_case(folder)
    if not result.problems:
        text = yaml.safe_dump({"documents": json.loads(json.dumps(result.documents, default=str))}, sort_keys=False, allow_unicode=True,
                              width=200)
        (folder / EXPECTED_FILE).write_text("# written by `rulebill replay --update`; review the diff before committing\n" + text,
                                            encoding="utf-8")
    return result


__all__ = ["BillReplayResult", "document_dict", "is_bill_case", "replay_bill_case", "run_bill_case", "update_bill_case"]
