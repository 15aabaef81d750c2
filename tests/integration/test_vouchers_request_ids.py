"""Request ids and reservation ids are per tenant (vouchers_0004), over a real port on SQLite and PostgreSQL.

Two MVNOs may both send ``r-1``.  Another tenant's id is neither refused as taken nor replayed: a caller naming a
subscriber it cannot see gets exactly what an unknown subscriber gets, whatever request id and PIN come with it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from billing.v1 import voucher_pb2 as pb
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, pins_of, subscriber, vs

pytestmark = pytest.mark.integration
C = grpc.StatusCode
UNKNOWN = "4917099999999"  # nobody's number


def _on_sale(stack: Any, tenant: str, profile: str, count: int) -> list[str]:
    admin = vs(stack, tenant)
    batch = activate(admin, generate(admin, profile, count).batch_id)
    return list(pins_of(stack, batch, tenant).values())


def _as_unknown(err: grpc.RpcError, msisdn: str) -> tuple[Any, str, bytes]:
    """The whole answer (code, message, rich details) with the number asked for blanked."""
    rich = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
    return err.code(), (err.details() or "").replace(msisdn, "<msisdn>"), rich.replace(msisdn.encode(), b"<msisdn>")


def test_two_tenants_use_one_request_id_and_neither_learns_of_the_other(stack: Any) -> None:
    alpha_pins, beta_pins = _on_sale(stack, "mvno-alpha", "vp-alpha-eur-10", 2), _on_sale(stack, "mvno-beta", "vp-beta-eur-20", 1)
    alpha_sub, beta_sub = subscriber(stack, "mvno-alpha"), subscriber(stack, "mvno-beta")
    alpha, beta = vs(stack, "mvno-alpha", "csr"), vs(stack, "mvno-beta", "csr")
    first = alpha.Redeem(pb.RedeemRequest(msisdn=alpha_sub, pin=alpha_pins[0], request_id="r-1"))
    # beta's own r-1: a redemption of its own, not REQUEST_ID_REUSED
    own = beta.Redeem(pb.RedeemRequest(msisdn=beta_sub, pin=beta_pins[0], request_id="r-1"))
    assert (own.credited.amount_micros, own.request_id) == (20_000_000, "r-1") and own.serial != first.serial
    before = audit_count(stack)
    # beta replaying alpha's r-1 with alpha's subscriber and PIN: what an unknown subscriber gets, nothing of alpha's
    replay = rpc_error(lambda: beta.Redeem(pb.RedeemRequest(msisdn=alpha_sub, pin=alpha_pins[0], request_id="r-1")), C.NOT_FOUND)
    unknown = rpc_error(lambda: beta.Redeem(pb.RedeemRequest(msisdn=UNKNOWN, pin=alpha_pins[0], request_id="r-1")), C.NOT_FOUND)
    assert _as_unknown(replay, alpha_sub) == _as_unknown(unknown, UNKNOWN)
    for secret in (first.batch_id, first.transaction_id, "r-1", "voucher"):
        assert secret not in _as_unknown(replay, alpha_sub)[1]
    other_pin = rpc_error(lambda: beta.Redeem(pb.RedeemRequest(msisdn=alpha_sub, pin=alpha_pins[1], request_id="r-1")), C.NOT_FOUND)
    assert _as_unknown(other_pin, alpha_sub) == _as_unknown(unknown, UNKNOWN)
    assert audit_count(stack) == before
    # alpha's retry is still its stored result; its own id with another PIN is still refused
    assert alpha.Redeem(pb.RedeemRequest(msisdn=alpha_sub, pin=alpha_pins[0], request_id="r-1")) == first
    err = rpc_error(lambda: alpha.Redeem(pb.RedeemRequest(msisdn=alpha_sub, pin=alpha_pins[1], request_id="r-1")), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "REQUEST_ID_REUSED"
    assert beta.Redeem(pb.RedeemRequest(msisdn=beta_sub, pin=beta_pins[0], request_id="r-1")) == own


def test_two_tenants_use_one_reservation_id(stack: Any) -> None:
    alpha_pins, beta_pins = _on_sale(stack, "mvno-alpha", "vp-alpha-eur-10", 2), _on_sale(stack, "mvno-beta", "vp-beta-eur-20", 2)
    alpha_sub, beta_sub = subscriber(stack, "mvno-alpha"), subscriber(stack, "mvno-beta")
    alpha, beta, operator = vs(stack, "mvno-alpha", "csr"), vs(stack, "mvno-beta", "csr"), vs(stack, "mno")
    held = alpha.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=alpha_sub, pin=alpha_pins[0], request_id="h-1")).reservation
    mine = beta.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=beta_sub, pin=beta_pins[0], request_id="h-1")).reservation
    assert (mine.tenant_id, mine.msisdn, mine.status) == ("mvno-beta", beta_sub, pb.RESERVATION_STATUS_RESERVED)
    before = audit_count(stack)
    replay = rpc_error(lambda: beta.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=alpha_sub, pin=alpha_pins[0], request_id="h-1")),
                       C.NOT_FOUND)
    unknown = rpc_error(lambda: beta.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=UNKNOWN, pin=alpha_pins[0], request_id="h-1")),
                        C.NOT_FOUND)
    assert _as_unknown(replay, alpha_sub) == _as_unknown(unknown, UNKNOWN)
    assert held.batch_id not in _as_unknown(replay, alpha_sub)[1]
    # naming alpha's tenant is refused like an unknown reservation
    for step in (lambda: beta.CommitReservation(pb.CommitReservationRequest(reservation_id="h-1", tenant_id="mvno-alpha")),
                 lambda: beta.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id="h-1", tenant_id="mvno-alpha"))):
        err = rpc_error(step, C.NOT_FOUND)
        assert err.details() == rpc_error(lambda: beta.CommitReservation(pb.CommitReservationRequest(reservation_id="h-404")),
                                          C.NOT_FOUND).details().replace("h-404", "h-1")
    assert audit_count(stack) == before
    # each commits its own h-1
    done = beta.CommitReservation(pb.CommitReservationRequest(reservation_id="h-1"))
    assert (done.reservation.msisdn, done.reservation.tenant_id, done.redemption.serial) == (beta_sub, "mvno-beta", mine.serial)
    rpc_error(lambda: beta.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id="h-1")), C.FAILED_PRECONDITION)
    assert alpha.GetVoucher(pb.GetVoucherRequest(serial=held.serial)).voucher.state == pb.VOUCHER_STATE_RESERVED
    out = alpha.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id="h-1", reason="hung up")).reservation
    assert (out.msisdn, out.status) == (alpha_sub, pb.RESERVATION_STATUS_RELEASED)
    # the operator acts for both: it names the tenant when both used the id
    alpha.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=alpha_sub, pin=alpha_pins[1], request_id="h-2"))
    beta.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=beta_sub, pin=beta_pins[1], request_id="h-2"))
    err = rpc_error(lambda: operator.CommitReservation(pb.CommitReservationRequest(reservation_id="h-2")), C.INVALID_ARGUMENT)
    assert "tenant_id" in field_violations(err)
    done = operator.CommitReservation(pb.CommitReservationRequest(reservation_id="h-2", tenant_id="mvno-alpha"))
    assert (done.reservation.tenant_id, done.reservation.msisdn) == ("mvno-alpha", alpha_sub)
    out = operator.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id="h-2", tenant_id="mvno-beta")).reservation
    assert (out.tenant_id, out.status) == ("mvno-beta", pb.RESERVATION_STATUS_RELEASED)
