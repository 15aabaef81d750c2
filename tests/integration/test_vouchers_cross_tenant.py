"""Every VoucherService RPC that takes an object id refuses another tenant's objects and changes nothing
(issue #13 item 6), found from the service's descriptors by tests/integration/cross_tenant.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.v1 import voucher_pb2 as pb
from engine.identity import SYSTEM
from engine.subscribers import NewSubscriber, PaymentType
from store.vouchers import prepaid_balances, recharge_guards, voucher_reservations, vouchers
from tests.integration.cross_tenant import assert_all_refused, id_paths, probe_service
from tests.integration.helpers import audit_count
from tests.integration.rpc_catalogue import all_rpcs
from tests.integration.test_vouchers import activate, generate, pins_of, vs

pytestmark = pytest.mark.integration
SERVICE = pb.DESCRIPTOR.services_by_name["VoucherService"].full_name
EVERY_PRIVILEGE = ("voucher.reveal_pin", "voucher.purge", "voucher.recover")


def _snapshot(stack: Any, batch: pb.VoucherBatch, msisdn: str) -> tuple[Any, ...]:
    with stack.root.db.connect() as conn:
        rows = conn.execute(select(vouchers.c.serial, vouchers.c.state, vouchers.c.tenant_id, vouchers.c.face_value_micros,
                                   vouchers.c.expires_at, vouchers.c.dealer, vouchers.c.redeemed_by)
                            .where(vouchers.c.batch_id == batch.batch_id).order_by(vouchers.c.serial)).all()
        guard = conn.execute(select(recharge_guards).where(recharge_guards.c.msisdn == msisdn)).all()
        held = conn.execute(select(voucher_reservations).where(voucher_reservations.c.msisdn == msisdn)).all()
        credit = conn.execute(select(func.count()).select_from(prepaid_balances).where(prepaid_balances.c.msisdn == msisdn)).scalar()
    return tuple(rows), tuple(guard), tuple(held), credit, audit_count(stack)


def test_every_voucher_rpc_taking_an_object_id_refuses_another_tenant(stack: Any) -> None:
    alpha = vs(stack, "mvno-alpha")
    batch = activate(alpha, generate(alpha, "vp-alpha-eur-10", 3).batch_id)
    pins = pins_of(stack, batch, "mvno-alpha")
    msisdn = stack.unique_msisdn()
    stack.root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
        "mvno-alpha", msisdn, stack.unique_imsi(), "ACC", PaymentType.PREPAID, "TP_ALPHA_SIMPLE"))
    first = batch.first_serial
    vs(stack, "mvno-alpha", "csr").ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pins[first + 1], request_id="xt-held"))
    owned = {"batch_id": batch.batch_id, "serial": first, "first_serial": first, "last_serial": first + 2, "msisdn": msisdn,
             "tenant_id": "mvno-alpha", "reservation_id": "xt-held", "profile_id": "vp-alpha-eur-10"}
    extra = {
        "GenerateBatch": {"count": 1},
        "StreamVouchers": {"reveal": True},
        "ExportVouchers": {"recipient_public_key": b"any key: the selection is checked first"},
        # alpha's own request id, and for ReserveVoucher the PIN alpha reserved with it: a replay of alpha's request
        # (request ids are per tenant: the id is neither refused as taken nor answered with alpha's reservation)
        "Redeem": {"pin": pins[first], "request_id": "xt-held"},
        "ReserveVoucher": {"pin": pins[first + 1], "request_id": "xt-held"},
        "ChangeVouchers": {"event": pb.VOUCHER_EVENT_BLOCK},
        "ChangeBatch": {"event": pb.BATCH_EVENT_BLOCK},
        "AmendVoucher": {"dealer": "moved", "set_dealer": True},
        "ReleaseReservation": {"reason": "not yours"},
    }
    # the attacker holds everything an MVNO may hold, so only tenancy can refuse
    attacker = stack.token("mvno-beta", "mvno_admin", privileges=EVERY_PRIVILEGE)
    before = _snapshot(stack, batch, msisdn)
    probes = probe_service(stack.address, SERVICE, owned, attacker, extra)
    assert_all_refused(probes)
    assert _snapshot(stack, batch, msisdn) == before
    taking_ids = {r.name for r in all_rpcs([SERVICE]) if id_paths(r.request_class.DESCRIPTOR)}
    assert {p.rpc for p in probes} == taking_ids and {
        "GetBatch", "GetVoucher", "StreamVouchers", "ExportVouchers", "Redeem", "ChangeVouchers", "ChangeBatch", "AmendVoucher",
        "ClearRechargeBar", "GenerateBatch", "ReserveVoucher", "CommitReservation", "ReleaseReservation"} <= taking_ids
    # the owner's own token gets through the same requests (the probe itself is sound)
    owner = stack.token("mvno-alpha", "mvno_admin", privileges=EVERY_PRIVILEGE)
    ok = {p.rpc for p in probe_service(stack.address, SERVICE, owned, owner, {"GetBatch": {}, "GetVoucher": {}}) if p.code is None}
    assert {"GetBatch", "GetVoucher", "StreamVouchers"} <= ok
