"""Fixtures for the voucher domain tests: a fake store, keys, clock, principals, the sample profiles."""

from __future__ import annotations

import pytest

from engine.clock import FixedClock
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.profile import ProfileCatalogue, load_profiles
from engine.vouchers.rules import VoucherRules, load_voucher_rules
from engine.vouchers.settings import VoucherSettings

from .factories import REPO, T0, World, build_world  # noqa: F401 (T0 re-exported for tests)
from .fakes import FakeVoucherStore, RecordingLifecycle


@pytest.fixture(scope="session")
def profiles() -> ProfileCatalogue:
    catalogue = load_profiles([REPO / "plans" / "vouchers"], root=REPO)
    assert catalogue.ok, catalogue.problems
    return catalogue


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def keys() -> StaticKeyProvider:
    return StaticKeyProvider.random()


@pytest.fixture
def store() -> FakeVoucherStore:
    return FakeVoucherStore()


@pytest.fixture(scope="session", params=["compiled", "durable_rules"])
def rules(request: pytest.FixtureRequest) -> VoucherRules:
    """Every use-case test runs on the shipped rules/lifecycle files, through both rule backends."""
    return load_voucher_rules(REPO / "rules", backend=request.param)


@pytest.fixture
def lifecycle(rules: VoucherRules) -> RecordingLifecycle:
    return RecordingLifecycle(rules.lifecycle)


@pytest.fixture
def settings() -> VoucherSettings:
    return VoucherSettings(max_batch=50_000, chunk_size=64)


@pytest.fixture
def world(store: FakeVoucherStore, profiles: ProfileCatalogue, keys: StaticKeyProvider, clock: FixedClock,
          lifecycle: RecordingLifecycle, settings: VoucherSettings, rules: VoucherRules) -> World:
    for msisdn in ["491701234567", "491709999999", *(f"4917000000{i:02d}" for i in range(16))]:
        store.add_subscriber(msisdn, "mno")
    store.add_subscriber("491705555555", "mvno-alpha")
    return build_world(store, profiles, keys, clock, lifecycle, settings, rules.lockout)
