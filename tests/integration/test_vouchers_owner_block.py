"""A batch owner's block, unblock or purge stops (or starts) only its own vouchers (vouchers_0005): the vouchers of
its batch the operator gave to another tenant keep the batch state they saw and are redeemed; the operator's block
covers every voucher of the batch, each owner's auditor seeing it.  Over a real port on SQLite and PostgreSQL (whose
redemption runs in the stored functions)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from billing.v1 import audit_pb2
from billing.v1 import voucher_pb2 as pb
from tests.integration.helpers import precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, pins_of, subscriber, vs

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def _batch_entries(stack: Any, tenant: str, batch_id: str, action: str) -> list[dict[str, Any]]:
    auditor = stack.client(tenant, "auditor").audit.rpc
    entries = auditor.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(page_size=1000, object_type="voucher_batch",
                                                                         object_id=batch_id)).entries
    return [json.loads(e.after_json) for e in entries if e.action == action]


def _change(client: Any, batch_id: str, event: int) -> pb.VoucherBatch:
    return client.ChangeBatch(pb.ChangeBatchRequest(batch_id=batch_id, event=event, reason="test")).batch


class _Redeemer:
    """A tenant's CSR redeeming for one subscriber of its own, a fresh request id each time."""

    def __init__(self, stack: Any, tenant: str) -> None:
        self.client, self.msisdn, self.n = vs(stack, tenant, "csr"), subscriber(stack, tenant), 0

    def __call__(self, pin: str) -> Any:
        self.n += 1
        return self.client.Redeem(pb.RedeemRequest(msisdn=self.msisdn, pin=pin, request_id=f"ob-{self.msisdn}-{self.n}"))

    def refused(self, pin: str) -> str:
        return precondition_reason(rpc_error(lambda: self(pin), C.FAILED_PRECONDITION))


def test_an_owner_s_block_and_purge_stop_only_its_own_vouchers_the_operator_s_block_all(stack: Any) -> None:
    alpha, beta, operator = vs(stack, "mvno-alpha"), vs(stack, "mvno-beta"), vs(stack, "mno")
    batch = activate(alpha, generate(alpha, "vp-alpha-eur-10", 6).batch_id)
    pins = pins_of(stack, batch, "mvno-alpha")
    first = batch.first_serial
    given = [first + 3, first + 4, first + 5]            # the operator gives three of alpha's vouchers to beta
    for serial in given:
        operator.AmendVoucher(pb.AmendVoucherRequest(serial=serial, tenant_id="mvno-beta"))
    at_alpha, at_beta = _Redeemer(stack, "mvno-alpha"), _Redeemer(stack, "mvno-beta")

    # alpha blocks its batch: its own vouchers stop, beta's are redeemed
    assert _change(alpha, batch.batch_id, pb.BATCH_EVENT_BLOCK).state == pb.BATCH_STATE_BLOCKED
    assert at_alpha.refused(pins[first]) == "BATCH_NOT_ACTIVE"
    assert at_beta(pins[given[0]]).serial == given[0]
    assert _batch_entries(stack, "mvno-alpha", batch.batch_id, "voucher_batch.block")[-1] == {
        "state": "blocked", "others_state": "active", "reason": "test"}
    assert _batch_entries(stack, "mvno-beta", batch.batch_id, "voucher_batch.block") == []   # nothing of beta's changed
    # beta, which owns vouchers of the batch, still cannot name the batch (another tenant's: NOT_FOUND)
    rpc_error(lambda: _change(beta, batch.batch_id, pb.BATCH_EVENT_BLOCK), C.NOT_FOUND)
    rpc_error(lambda: _change(beta, batch.batch_id, pb.BATCH_EVENT_UNBLOCK), C.NOT_FOUND)
    # alpha unblocks: its own again
    _change(alpha, batch.batch_id, pb.BATCH_EVENT_UNBLOCK)
    assert at_alpha(pins[first]).serial == first

    # the operator's block covers every voucher of the batch, and beta's auditor sees it
    _change(operator, batch.batch_id, pb.BATCH_EVENT_BLOCK)
    assert at_beta.refused(pins[given[1]]) == "BATCH_NOT_ACTIVE"
    assert at_alpha.refused(pins[first + 1]) == "BATCH_NOT_ACTIVE"
    assert _batch_entries(stack, "mvno-beta", batch.batch_id, "voucher_batch.block")[-1] == {"state": "blocked", "reason": "test"}
    _change(operator, batch.batch_id, pb.BATCH_EVENT_UNBLOCK)
    assert _batch_entries(stack, "mvno-beta", batch.batch_id, "voucher_batch.unblock")[-1]["state"] == "active"
    assert at_beta(pins[given[1]]).serial == given[1]

    # alpha blocks and purges its batch: its vouchers are gone, beta's last one is still redeemed
    purger = vs(stack, token=stack.token("mvno-alpha", privileges=("voucher.purge",)))
    _change(alpha, batch.batch_id, pb.BATCH_EVENT_BLOCK)
    assert _change(purger, batch.batch_id, pb.BATCH_EVENT_PURGE).state == pb.BATCH_STATE_PURGED
    assert at_alpha.refused(pins[first + 2]) in ("BATCH_NOT_ACTIVE", "VOUCHER_NOT_ACTIVE")
    assert at_beta(pins[given[2]]).serial == given[2]
