"""Builders for the use-case objects under test (one place that wires fakes together)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.clock import FixedClock
from engine.eventrules import LockoutPolicy
from engine.identity import Principal, Role
from engine.vouchers.desk import VoucherDesk
from engine.vouchers.distribution import Distributor
from engine.vouchers.generation import BatchRequest
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.model import VoucherBatch
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.profile import ProfileCatalogue
from engine.vouchers.recharge import Recharger
from engine.vouchers.settings import VoucherSettings

from .fakes import FakeVoucherStore, RecordingLifecycle

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)

ADMIN = Principal("ops-admin", "mno", Role.OPERATOR_ADMIN, is_operator=True)
PURGER = Principal("retention-job", "mno", Role.OPERATOR_ADMIN, is_operator=True, privileges=frozenset({"voucher.purge"}))
REVEALER = Principal("print-desk", "mno", Role.OPERATOR_ADMIN, is_operator=True, privileges=frozenset({"voucher.reveal_pin"}))
KEY_ADMIN = ADMIN
ALPHA_ADMIN = Principal("alpha-admin", "mvno-alpha", Role.MVNO_ADMIN)
ALPHA_CSR = Principal("alpha-csr", "mvno-alpha", Role.CSR)
CSR = Principal("mno-csr", "mno", Role.CSR, is_operator=True)
AUDITOR = Principal("auditor", "mno", Role.AUDITOR, is_operator=True)


@dataclass
class World:
    store: FakeVoucherStore
    desk: VoucherDesk
    recharger: Recharger
    distributor: Distributor
    keys: StaticKeyProvider
    clock: FixedClock
    lifecycle: RecordingLifecycle

    def batch(self, profile_id: str = "vp-mno-eur-10", count: int = 20, activate: bool = True, **overrides: object) -> VoucherBatch:
        batch = self.desk.generate_batch(ADMIN, BatchRequest(profile_id, count, **overrides))  # type: ignore[arg-type]
        if activate:
            batch = self.desk.change_batch(ADMIN, batch.batch_id, "activate")
        return batch

    def pins(self, batch: VoucherBatch) -> dict[int, str]:
        """serial -> PIN, through the reveal path (what a print shop would get)."""
        out: dict[int, str] = {}
        for chunk in self.desk.stream_vouchers(REVEALER, VoucherSelection(batch_id=batch.batch_id), reveal=True):
            out.update({r.voucher.serial: r.pin for r in chunk if r.pin})
        return out


def build_world(store: FakeVoucherStore, profiles: ProfileCatalogue, keys: StaticKeyProvider, clock: FixedClock,
                lifecycle: RecordingLifecycle, settings: VoucherSettings, lockout: LockoutPolicy) -> World:
    return World(
        store=store,
        desk=VoucherDesk(store, profiles, keys, lifecycle, clock, settings),  # type: ignore[arg-type]
        recharger=Recharger(store, keys, lifecycle, clock, lockout),  # type: ignore[arg-type]
        distributor=Distributor(store, keys, lifecycle, clock),  # type: ignore[arg-type]
        keys=keys,
        clock=clock,
        lifecycle=lifecycle,
    )
