"""What each tenant sees of a voucher batch whose vouchers have several owners, over a real port on SQLite and
PostgreSQL: the batch's owner sees the state of its own vouchers (GetBatch, ListBatches), the operator sees that and
the state of the vouchers it gave to other tenants (``other_owners_state``), each voucher shows the batch state it is
redeemed under (``batch_state``); the operator's unblock lifts its block from every voucher after the owner lifted its
own, its block stops the others' vouchers after the owner blocked its own; export decides on the batch state of each
voucher as redemption does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from billing.v1 import voucher_pb2 as pb
from engine.settings import Settings
from tests.integration.conftest import Stack, running_stack
from tests.integration.helpers import precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, lifecycle_changed, pins_of, vs
from tests.integration.test_vouchers_owner_block import _batch_entries, _change, _Redeemer
from tests.unit.vouchers.gpgkeys import GPG, make_key, stop_agent

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
C = grpc.StatusCode
BLOCKED, ACTIVE, NONE = pb.BATCH_STATE_BLOCKED, pb.BATCH_STATE_ACTIVE, pb.BATCH_STATE_UNSPECIFIED


def _given_batch(stack: Any, count: int = 6) -> tuple[pb.VoucherBatch, dict[int, str], list[int]]:
    """An active batch of mvno-alpha whose last three vouchers the operator gave to mvno-beta."""
    alpha, operator = vs(stack, "mvno-alpha"), vs(stack, "mno")
    batch = activate(alpha, generate(alpha, "vp-alpha-eur-10", count).batch_id)
    given = [batch.last_serial - 2, batch.last_serial - 1, batch.last_serial]
    for serial in given:
        operator.AmendVoucher(pb.AmendVoucherRequest(serial=serial, tenant_id="mvno-beta"))
    return batch, pins_of(stack, batch, "mvno-alpha") | pins_of_serials(stack, given, "mvno-beta"), given


def pins_of_serials(stack: Any, serials: list[int], tenant: str) -> dict[int, str]:
    client = vs(stack, token=stack.token(tenant, privileges=("voucher.reveal_pin",)))
    out: dict[int, str] = {}
    for msg in client.StreamVouchers(pb.StreamVouchersRequest(
            selection=pb.VoucherSelection(first_serial=min(serials), last_serial=max(serials)), reveal=True)):
        out.update({v.serial: v.pin for v in msg.vouchers})
    return out


def _views(stack: Any, batch_id: str) -> dict[str, tuple[int, int]]:
    """(state, other_owners_state) of the batch by GetBatch, for its owner and the operator; the operator's ListBatches
    says the same as its GetBatch."""
    out = {}
    for tenant in ("mvno-alpha", "mno"):
        got = vs(stack, tenant).GetBatch(pb.GetBatchRequest(batch_id=batch_id)).batch
        out[tenant] = (got.state, got.other_owners_state)
        listed = [b for b in vs(stack, tenant).ListBatches(pb.ListBatchesRequest(page_size=1000)).batches if b.batch_id == batch_id]
        assert [(b.state, b.other_owners_state) for b in listed] == [out[tenant]]
    return out


def _batch_state_of(stack: Any, tenant: str, serial: int) -> int:
    return int(vs(stack, tenant).GetVoucher(pb.GetVoucherRequest(serial=serial)).voucher.batch_state)


def test_the_operator_sees_both_states_and_its_unblock_lifts_the_block_it_laid_on_every_voucher(stack: Any) -> None:
    batch, pins, given = _given_batch(stack)
    alpha, operator = vs(stack, "mvno-alpha"), vs(stack, "mno")
    at_alpha, at_beta = _Redeemer(stack, "mvno-alpha"), _Redeemer(stack, "mvno-beta")
    first = batch.first_serial

    # the operator blocks every voucher of the batch; alpha lifts its own block
    _change(operator, batch.batch_id, pb.BATCH_EVENT_BLOCK)
    assert _change(alpha, batch.batch_id, pb.BATCH_EVENT_UNBLOCK).other_owners_state == NONE   # alpha's answer: its own
    assert at_alpha(pins[first]).serial == first
    assert at_beta.refused(pins[given[0]]) == "BATCH_NOT_ACTIVE"
    # alpha sees its vouchers' state; the operator sees beta's vouchers still blocked; each voucher tells its own
    assert _views(stack, batch.batch_id) == {"mvno-alpha": (ACTIVE, NONE), "mno": (ACTIVE, BLOCKED)}
    assert _batch_state_of(stack, "mvno-beta", given[0]) == BLOCKED
    assert _batch_state_of(stack, "mvno-alpha", first + 1) == ACTIVE
    assert _batch_state_of(stack, "mno", given[0]) == BLOCKED
    streamed = {v.serial: v.batch_state for m in operator.StreamVouchers(pb.StreamVouchersRequest(
        selection=pb.VoucherSelection(batch_id=batch.batch_id))) for v in m.vouchers}
    assert streamed == {s: BLOCKED if s in given else ACTIVE for s in range(first, batch.last_serial + 1)}

    # the operator's unblock lifts its block from beta's vouchers (the owner's state, active, does not allow unblock)
    after = _change(operator, batch.batch_id, pb.BATCH_EVENT_UNBLOCK)
    assert (after.state, after.other_owners_state) == (ACTIVE, NONE)
    assert at_beta(pins[given[0]]).serial == given[0]
    assert _views(stack, batch.batch_id) == {"mvno-alpha": (ACTIVE, NONE), "mno": (ACTIVE, NONE)}
    # beta's auditor sees the unblock of its vouchers' batch; alpha's, the batch's entry: alpha's state stays, the
    # other owners' is the batch's again
    assert _batch_entries(stack, "mvno-beta", batch.batch_id, "voucher_batch.unblock")[-1] == {"state": "active", "reason": "test"}
    assert _batch_entries(stack, "mvno-alpha", batch.batch_id, "voucher_batch.unblock")[-1] == {"others_state": "", "reason": "test"}
    # unblocking again: nothing of the batch is blocked any more
    assert "it is active" in rpc_error(lambda: _change(operator, batch.batch_id, pb.BATCH_EVENT_UNBLOCK), C.FAILED_PRECONDITION).details()


def test_the_operator_s_block_stops_the_others_vouchers_after_the_owner_blocked_its_own(stack: Any) -> None:
    batch, pins, given = _given_batch(stack)
    alpha, operator = vs(stack, "mvno-alpha"), vs(stack, "mno")
    at_beta = _Redeemer(stack, "mvno-beta")
    _change(alpha, batch.batch_id, pb.BATCH_EVENT_BLOCK)
    assert _views(stack, batch.batch_id) == {"mvno-alpha": (BLOCKED, NONE), "mno": (BLOCKED, ACTIVE)}
    assert _batch_state_of(stack, "mvno-beta", given[1]) == ACTIVE

    # the owner's vouchers are blocked already: the operator's block stops beta's
    after = _change(operator, batch.batch_id, pb.BATCH_EVENT_BLOCK)
    assert (after.state, after.other_owners_state) == (BLOCKED, NONE)
    assert at_beta.refused(pins[given[1]]) == "BATCH_NOT_ACTIVE"
    assert _batch_state_of(stack, "mvno-beta", given[1]) == BLOCKED
    assert _batch_entries(stack, "mvno-beta", batch.batch_id, "voucher_batch.block")[-1] == {"state": "blocked", "reason": "test"}
    # all blocked: a third block is refused, naming the state
    assert "it is blocked" in rpc_error(lambda: _change(operator, batch.batch_id, pb.BATCH_EVENT_BLOCK), C.FAILED_PRECONDITION).details()
    # beta still cannot see (nor name) alpha's batch
    rpc_error(lambda: vs(stack, "mvno-beta").GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)), C.NOT_FOUND)
    assert batch.batch_id not in {b.batch_id for b in vs(stack, "mvno-beta").ListBatches(pb.ListBatchesRequest(page_size=1000)).batches}


@pytest.fixture(scope="module")
def strict_export(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server whose rules/lifecycle exports only the vouchers of a generated or active batch: a data change only."""
    home = tmp_path_factory.mktemp("strict-export")
    old = "  - event: export              # into a distribution file for printers and distributors; the state stays\n" \
          "    from: [generated, active]\n    to: same\n    when: {expired: false}\n"
    rules = lifecycle_changed(home, old, old.replace("when: {expired: false}", "when: {expired: false, batch_state: [generated, active]}"))
    with running_stack(Settings(home=home, database_url=db_url, rules_dir=rules)) as s:
        yield s


@pytest.mark.skipif(shutil.which(GPG) is None, reason="gpg not installed")
def test_export_decides_on_the_batch_state_each_voucher_is_redeemed_under(strict_export: Stack, tmp_path: Path) -> None:
    stack = strict_export
    batch, _pins, given = _given_batch(stack)
    _change(vs(stack, "mvno-alpha"), batch.batch_id, pb.BATCH_EVENT_BLOCK)   # alpha's vouchers stop; beta's do not
    recipient = make_key(tmp_path / "r", "Printer <p@example.test>")
    try:
        def export(tenant: str, selection: pb.VoucherSelection) -> pb.ExportReceipt:
            client = vs(stack, token=stack.token(tenant, privileges=("voucher.reveal_pin",)))
            parts = list(client.ExportVouchers(pb.ExportVouchersRequest(selection=selection,
                                                                        recipient_public_key=recipient.public_key)))
            return parts[0].receipt

        beta_range = pb.VoucherSelection(first_serial=given[0], last_serial=given[-1])
        assert export("mvno-beta", beta_range).count == 3           # beta's vouchers see an active batch: exported
        receipt = export("mno", pb.VoucherSelection(batch_id=batch.batch_id))
        assert receipt.count == 3                                   # the operator's: beta's three; alpha's three left out
        assert [(g.state, g.count) for g in receipt.left_out] == [(pb.VOUCHER_STATE_ACTIVE, 3)]
        refused = rpc_error(lambda: export("mvno-alpha", pb.VoucherSelection(batch_id=batch.batch_id)), C.FAILED_PRECONDITION)
        assert precondition_reason(refused) == "NOTHING_TO_EXPORT"
    finally:
        stop_agent(recipient.home)
