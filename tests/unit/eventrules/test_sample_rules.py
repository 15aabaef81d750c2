"""The shipped rules/ load cleanly and reference only destination groups plans/ defines."""

from __future__ import annotations

from engine.eventrules import RuleBook, load_rule_book

from .conftest import REPO, RULES


def test_sample_rules_are_valid(book: RuleBook) -> None:
    assert len(book.barring_table.rules) >= 10
    assert {t.tenant for t in book.alert_table.thresholds} == {"mno", "mvno-alpha", "mvno-beta"}
    assert sorted(m.entity for m in book.lifecycle_models) == ["voucher", "voucher_batch"]
    assert book.lockout_policy.max_failures == 5 and book.lockout_policy.bar_seconds == 86_400


def test_load_rule_book_ignores_other_rule_folders() -> None:
    assert load_rule_book(RULES).barring_table == load_rule_book(RULES).barring_table


def test_destination_groups_exist_in_plans(book: RuleBook) -> None:
    groups = {p.stem for p in (REPO / "plans" / "destinations").glob("*.yaml")}
    if not groups:  # plans/ not shipped yet in this checkout
        return
    assert book.dangling_references(groups) == []
    missing = book.dangling_references(groups - {"DST_PREMIUM"})
    assert {p.code for p in missing} == {"rule.unknown-destination-group"}
    assert all(p.file.endswith(".yaml") and p.line > 0 for p in missing)


def test_plan_and_tenant_references(book: RuleBook) -> None:
    plan_ids = {"TP_SMART_S", "TP_SMART_M", "TP_ALPHA_SIMPLE", "TP_BETA_DATA", "TP_BUSINESS_PRO"}
    groups = {g for g, _, _ in book.barring_table.destination_groups()}
    tenants = {"mno", "mvno-alpha", "mvno-beta"}
    assert book.dangling_references(groups, plan_ids, tenants) == []
    problems = book.dangling_references(groups, plan_ids - {"TP_BUSINESS_PRO"}, tenants - {"mvno-beta"})
    codes = sorted({(p.code, p.file.rsplit("/", 1)[-1]) for p in problems})
    assert codes == [
        ("rule.unknown-plan", "ALERTS_RETAIL.yaml"),
        ("rule.unknown-tenant", "ALERTS_WHOLESALE.yaml"),
        ("rule.unknown-tenant", "BAR_PLANS.yaml"),
    ]


def test_sample_plan_ids_exist_in_plans(book: RuleBook) -> None:
    import re

    plan_ids = {
        m.group(1)
        for p in (REPO / "plans" / "tariff_plans").rglob("*.yaml")
        for m in [re.search(r"^id:\s*(\S+)", p.read_text(encoding="utf-8"), re.M)]
        if m
    }
    if not plan_ids:
        return
    assert [p for p in book.dangling_references(set(), plan_ids) if p.code == "rule.unknown-plan"] == []
