"""Factories for billing unit tests: the golden bill cases' plan set with extra files, accounts, subscribers, usage."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

from engine.billing.catalogue import BillingCatalogue
from engine.billing.model import Account, Address, RatedUsage, SubscriberService
from engine.billing.profile import BillingProfile
from engine.billing.replay import load_profiles_file
from engine.plans import load_plan_set

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "bills"
BASE = GOLDEN / "commitment-true-up"
UTC = timezone.utc


def catalogue(tmp: Path, extra: dict[str, str] | None = None, base: Path = BASE) -> BillingCatalogue:
    folder = tmp / "plans"
    shutil.copytree(base / "plans", folder, dirs_exist_ok=True)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    plan_set, problems = load_plan_set([folder], root=tmp)
    assert plan_set is not None, problems
    return BillingCatalogue.from_plan_set(plan_set, 1)


def profile(currency: str = "EUR") -> BillingProfile:
    profiles, problems = load_profiles_file(BASE / "profile.yaml")
    assert not problems
    p = next(iter(profiles.values()))
    from dataclasses import replace

    return replace(p, currency=currency)


def account(account_id: str = "ACC-1", **kw: object) -> Account:
    fields: dict = dict(tenant_id="mno", account_id=account_id, name="Jeanne Martin",
                        address=Address(("5 rue Victor Hugo",), "Lyon", "69001", "FR"), currency="EUR", anchor_day=1,
                        time_zone="Europe/Paris")
    fields.update(kw)
    return Account(**fields)  # type: ignore[arg-type]


def service(msisdn: str = "33612000001", plan: str = "TP_COMMIT", activated: date = date(2026, 3, 1), sid: str = "",
            deactivated: date | None = None, plans: tuple[tuple[date, str], ...] = ()) -> SubscriberService:
    return SubscriberService(sid or f"sub-{msisdn}", msisdn, date(2026, 1, 1), None, activated, deactivated, plans or ((activated, plan),))


def usage(n: int, msisdn: str = "33612000001", charge: int = 1_000_000, destination: str = "DST_INTL", plan: str = "TP_COMMIT",
          day: int = 5, service_name: str = "voice", currency: str = "EUR") -> list[RatedUsage]:
    return [RatedUsage(f"c{msisdn[-3:]}{i:05d}", msisdn, datetime(2026, 3, day, 10, i % 60, tzinfo=UTC), service_name, destination,
                       charge, currency, plan, 1, 60) for i in range(n)]
