"""Sample billing data for `rulebill bootstrap` (and so `make run`): the accounts of ``plans/billing/samples.yaml``
with subscribers that started on the 10th of the sample month and that month's usage, stored and rated, so that
``rulebill bills preview ACC-1001`` shows a real bill at once and ``rulebill rerate`` has CDRs to rate again.

The sample month is fixed, November 2026 (``SAMPLE_MONTH``), the month of the files in ``samples/``
(samples/make_samples.py): what the README walkthrough shows does not depend on the day it runs.  The usage goes
the product's way: an export of the MNO's MSC (the ``msc_generic`` layout) mediated by the mediation desk, which
stores the CDRs and rates them with bundle counters, as ``rulebill mediate --remote --rate`` does.  For it to be
rated, the operator's plan set must have been in force that month: on a fresh install (the plan set bootstrap just
activated is the operator's only version) its activation is moved back to the 1st of the sample month, with an
audit entry.  Running bootstrap again keeps everything (nothing is provisioned or stored twice).
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine import audit
from engine.billing.accounts import AccountSpec
from engine.billing.model import Address
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.subscribers import NewSubscriber, PaymentType
from engine.yamlio import Fields, MarkedList, MarkedMap, Problem, format_problems, load_file

TZ = ZoneInfo("Europe/Paris")
DESTINATIONS = ("33612345678", "33687654321", "33140000000", "33478000000", "4930123456", "34911234567", "12125550100")
SAMPLE_MONTH = date(2026, 11, 1)   # the month of samples/ (samples/make_samples.py), whatever today is
USAGE_LAYOUT = "msc_generic"       # rules/mediation/msc_generic.yaml: the MNO's MSC export, with IMSIs
MSC_HEADER = ("record_id;record_type;served_imsi;served_msisdn;other_party;start_time;duration_ms;volume_up;volume_down;"
              "visited_plmn;call_reference;partial_seq;partial_last;termination;ss_code")
MSC_TYPES = {Service.VOICE: "MOC", Service.SMS: "SMSMO", Service.DATA: "GPRS"}


def bootstrap_samples(root: Any, path: Path | None = None, month: date = SAMPLE_MONTH) -> dict[str, Any]:
    path = path or Path(root.settings.plans_dir) / "billing" / "samples.yaml"
    if not path.is_file():
        return {}
    problems: list[Problem] = []
    doc = load_file(path, problems)
    if problems or not isinstance(doc, MarkedMap):
        raise SystemExit(f"{path} is invalid:\n{format_problems(problems)}")
    f = Fields(doc, "billing_samples", problems)
    f.optional("kind", str)
    accounts = f.required("accounts", list) or MarkedList()
    f.done()
    desk = root.billing
    with root.uow(read_only=True) as unit:
        known = {t.tenant_id for t in unit.tenants.list(None, None, None, 1000)}
    with desk.uow(read_only=True) as uow:
        if any(uow.get_account(str(a.get("tenant", "")), str(a.get("id", ""))) is not None for a in accounts if isinstance(a, dict)):
            return {"billing_samples": "kept"}
    now = root.clock.now()
    start = month.replace(day=1)
    _backdate_plan_set(root, root.plan_uow, start, now)
    created = []
    usage_rows: list[str] = []
    for i, node in enumerate(accounts):
        af = Fields(node, f"accounts[{i}]", problems, fallback=accounts.mark_of(i))
        tenant = af.required("tenant", str) or ""
        account_id = af.required("id", str) or ""
        addr = af.required("address", dict) or {}
        subscribers = af.required("subscribers", list) or []
        usage = af.optional("usage", dict, default={}) or {}
        spec = AccountSpec(account_id=account_id, tenant_id=tenant, name=af.required("name", str),
                           address=Address(tuple(addr.get("lines", [])), addr.get("city", ""), str(addr.get("postal_code", "")),
                                           addr.get("country", "")),
                           language=af.optional("language", str), email=af.optional("email", str), vat_id=af.optional("vat_id", str),
                           tax_exemption=af.optional("tax_exemption", str), anchor_day=1, time_zone="Europe/Paris")
        af.done()
        if problems:
            raise SystemExit(f"{path} is invalid:\n{format_problems(problems)}")
        if tenant not in known or tenant not in desk.accounts.profiles:
            continue
        principal = replace(SYSTEM, tenant_id=tenant, subject="bootstrap", is_operator=tenant == "mno")
        desk.accounts.create(principal, spec)
        rng = random.Random(account_id)
        for k, sub in enumerate(subscribers):
            activated = datetime.combine(start + timedelta(days=9), time(9, 0), TZ) + timedelta(minutes=k)
            people = root.subscribers.as_of(FixedClock(activated))
            new = people.provision(principal, NewSubscriber(tenant, str(sub["msisdn"]), str(sub["imsi"]), account_id,
                                                            PaymentType.POSTPAID, sub["plan"]))
            people.transition(principal, new.subscriber_id, "activate")
            desk.accounts.assign(principal, tenant, account_id, new.subscriber_id, activated)
            cdrs = _usage(rng, tenant, new.msisdn, activated, datetime.combine(start + timedelta(days=31), time(0), TZ).replace(day=1),
                          usage)
            usage_rows += _msc_rows(cdrs, str(sub["imsi"]))
        created.append(account_id)
    out: dict[str, Any] = {"billing_samples": created}
    if usage_rows:
        out["billing_sample_usage"] = _store_usage(root, usage_rows, start)
    return out


def _msc_rows(cdrs: list[MediatedCdr], imsi: str) -> list[str]:
    """The CDRs as lines of the MSC export (msc_generic): whole seconds, the record id their origin."""
    return [f"{c.origin_id};{MSC_TYPES[c.service]};{imsi};{c.a_number};{c.b_number};{c.start_time.astimezone(timezone.utc):%Y%m%d%H%M%S};"
            f"{c.duration_seconds * 1000};{c.volume_up_bytes};{c.volume_down_bytes};;;;;normalRelease;" for c in cdrs]


def _store_usage(root: Any, rows: list[str], month: date) -> dict[str, Any]:
    """Mediate the sample month's MSC export as the operator, stored and rated (MediationService's path with
    ``rate``): re-rating finds the CDRs, and each is rated with its subscriber's plan and bundle counters."""
    data = ("\n".join([MSC_HEADER, *rows]) + "\n").encode()
    operator = replace(SYSTEM, tenant_id="mno", subject="bootstrap", is_operator=True)
    summary = root.mediation.mediate(operator, USAGE_LAYOUT, io.BytesIO(data), hashlib.sha256(data).hexdigest(),
                                     f"bootstrap-sample-usage-{month:%Y-%m}.csv", rate=True)
    if summary.file_error is not None:
        raise SystemExit(f"bootstrap: the sample usage was refused: {summary.file_error.code}: {summary.file_error.message}")
    return {"month": f"{month:%Y-%m}", "cdrs": summary.normalised, "rated": summary.rated, "unrated": summary.unrated}


def _usage(rng: random.Random, tenant: str, msisdn: str, start: datetime, end: datetime, usage: dict[str, Any]) -> list[MediatedCdr]:
    span = (end - start).total_seconds() - 3600
    out = []

    def when() -> datetime:   # whole seconds, as the MSC export writes them
        return start + timedelta(seconds=int(rng.uniform(600, span)))

    for n in range(int(usage.get("calls", 0))):
        origin = f"BS{msisdn}c{n}"
        out.append(MediatedCdr(cdr_identity("sample", origin, tenant), "sample", origin, Service.VOICE, Direction.ORIGINATING, when(), msisdn,
                               rng.choice(DESTINATIONS), duration_seconds=rng.choice((35, 62, 95, 180, 240, 410, 725)), tenant=tenant))
    for n in range(int(usage.get("sms", 0))):
        origin = f"BS{msisdn}s{n}"
        out.append(MediatedCdr(cdr_identity("sample", origin, tenant), "sample", origin, Service.SMS, Direction.ORIGINATING, when(), msisdn,
                               rng.choice(DESTINATIONS[:2]), tenant=tenant))
    sessions = max(int(usage.get("data_mb", 0)) // 150, 0)
    for n in range(sessions):
        origin = f"BS{msisdn}d{n}"
        out.append(MediatedCdr(cdr_identity("sample", origin, tenant), "sample", origin, Service.DATA, Direction.ORIGINATING, when(), msisdn,
                               "internet", volume_down_bytes=150 * 1024 * 1024, tenant=tenant))
    return sorted(out, key=lambda c: c.start_time)


def _backdate_plan_set(root: Any, plan_uow: Any, start: date, now: datetime) -> None:
    """A fresh install's only plan set version applies from the 1st of the sample month."""
    since = datetime.combine(start, time(0), TZ)
    with plan_uow() as uow:
        versions = uow.plan_versions.list("mno", None, 2)
        if len(versions) != 1 or versions[0].activate_time is None or versions[0].activate_time <= since:
            return
        v = versions[0]
        uow.plan_versions.set_activation("mno", v.version, since)
        uow.audit.append(audit.entry(replace(SYSTEM, tenant_id="mno", subject="bootstrap"), now, "plan_set.activate", "plan_set_version",
                                     f"mno/{v.version}", {"activate_time": v.activate_time},
                                     {"activate_time": since, "reason": "sample billing data: in force since the sample month"}, "mno"))
        uow.commit()
