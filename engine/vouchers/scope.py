"""Tenant scoping shared by the voucher use cases: an MVNO sees its own vouchers, the MNO sees all."""

from __future__ import annotations

from dataclasses import replace
from datetime import timezone

from engine.errors import NotFound
from engine.identity import Principal
from engine.vouchers.model import Voucher, VoucherBatch
from engine.vouchers.ports import VoucherSelection


def scoped(principal: Principal, selection: VoucherSelection) -> VoucherSelection:
    if principal.is_operator:
        return selection
    return replace(selection, owners=frozenset({principal.tenant_id}))


def visible_batch(principal: Principal, batch: VoucherBatch | None, batch_id: str) -> VoucherBatch:
    # another tenant's batch is reported exactly like a missing one
    if batch is None or not principal.can_see_tenant(batch.owner):
        raise NotFound("voucher batch", batch_id)
    return batch


def visible_voucher(principal: Principal, voucher: Voucher | None, serial: int) -> Voucher:
    if voucher is None or not principal.can_see_tenant(voucher.owner):
        raise NotFound("voucher", str(serial))
    return voucher


AUDIT_ID_MAX = 80  # the audit log's object_id column


def describe(selection: VoucherSelection) -> str:
    """A short, stable, PIN-free name for a selection (audit object id, messages)."""
    parts = []
    if selection.batch_id:
        parts.append(selection.batch_id)
    if selection.first_serial is not None or selection.last_serial is not None:
        first = "" if selection.first_serial is None else selection.first_serial
        last = "" if selection.last_serial is None else selection.last_serial
        parts.append(f"serials {first}-{last}")
    if selection.expired_by is not None:
        parts.append(f"expired by {selection.expired_by.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return (" ".join(parts) or "all vouchers")[:AUDIT_ID_MAX]
