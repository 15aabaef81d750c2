"""VoucherService over a real port, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, inspect, select

from billing.v1 import subscriber_pb2 as spb
from billing.v1 import voucher_pb2 as pb
from billing.v1 import voucher_pb2_grpc as rpc
from engine.vouchers.generation import DEFAULT_CHUNK_SIZE
from engine.vouchers.pins import luhn_check_digit
from store.vouchers import prepaid_balances, voucher_batches, vouchers
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
C = grpc.StatusCode


def vs(stack: Any, tenant: str = "mno", role: str = "", token: str | None = None) -> Any:
    return stack.client(tenant, role, token).stub(rpc.VoucherServiceStub)


def revealer(stack: Any, tenant: str = "mno") -> Any:
    return vs(stack, token=stack.token(tenant, privileges=("voucher.reveal_pin",)))


def generate(client: Any, profile: str = "vp-mno-eur-10", count: int = 10, **kw: Any) -> pb.VoucherBatch:
    events = list(client.GenerateBatch(pb.GenerateBatchRequest(profile_id=profile, count=count, **kw)))
    assert events[-1].HasField("batch")
    return events[-1].batch


def activate(client: Any, batch_id: str) -> pb.VoucherBatch:
    return client.ChangeBatch(pb.ChangeBatchRequest(batch_id=batch_id, event=pb.BATCH_EVENT_ACTIVATE)).batch


def pins_of(stack: Any, batch: pb.VoucherBatch, tenant: str = "mno") -> dict[int, str]:
    out: dict[int, str] = {}
    for msg in revealer(stack, tenant).StreamVouchers(pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), reveal=True)):
        out.update({v.serial: v.pin for v in msg.vouchers})
    return out


def lifecycle_changed(home: Path, old: str, new: str) -> Path:
    """A rules folder under ``home`` holding the checkout's rules/lifecycle with ``old`` (it must be in voucher.yaml)
    replaced by ``new``: a server started on it runs other voucher rules, a data change only."""
    rules = home / "rules"
    shutil.copytree(Path(__file__).resolve().parents[2] / "rules" / "lifecycle", rules / "lifecycle")
    path = rules / "lifecycle" / "voucher.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return rules


def subscriber(stack: Any, tenant: str = "mno") -> str:
    msisdn = stack.unique_msisdn()
    client = stack.client(tenant)
    s = client.subscribers.rpc.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
        msisdn=msisdn, imsi=stack.unique_imsi(), billing_account="ACC-PP", payment_type=spb.PAYMENT_TYPE_PREPAID,
        tariff_plan="TP_PREPAID_FLEX")).subscriber
    client.subscribers.rpc.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=s.subscriber_id))
    return msisdn


def count_rows(stack: Any, table: Any, where: Any = None) -> int:
    q = select(func.count()).select_from(table)
    if where is not None:
        q = q.where(where)
    with stack.root.db.connect() as conn:
        return int(conn.execute(q).scalar() or 0)


def test_generate_streams_progress_and_stores_the_whole_batch(stack: Any) -> None:
    op = vs(stack)
    events = list(op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=25_000, dealer="kiosk-7")))
    progress = [e.progress for e in events if e.HasField("progress")]
    # one progress message per chunk of DEFAULT_CHUNK_SIZE rows, the last one at the total
    step = DEFAULT_CHUNK_SIZE
    assert [p.done for p in progress] == [min(n, 25_000) for n in range(step, 25_000 + step, step)]
    assert {p.total for p in progress} == {25_000}
    batch = events[-1].batch
    assert (batch.count, batch.last_serial - batch.first_serial + 1, batch.face_value.amount_micros, batch.face_value.currency) == (
        25_000, 25_000, 10_000_000, "EUR")
    assert (batch.state, batch.pin_cipher, batch.dealer, batch.tenant_id) == (pb.BATCH_STATE_GENERATED, "aes-256-gcm", "kiosk-7", "mno")
    assert count_rows(stack, vouchers, vouchers.c.batch_id == batch.batch_id) == 25_000
    got = op.GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)).batch
    assert got == batch
    # streamed in chunks, never with PINs for a caller without the privilege
    chunks = list(op.StreamVouchers(pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), chunk_size=1000)))
    assert len(chunks) == 25 and all(len(c.vouchers) == 1000 for c in chunks)
    first = chunks[0].vouchers[0]
    assert (first.serial, first.serial_text, first.pin, first.state) == (batch.first_serial, f"MN{batch.first_serial:010d}", "",
                                                                           pb.VOUCHER_STATE_GENERATED)
    err = rpc_error(lambda: list(op.StreamVouchers(pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id),
                                                                                reveal=True))), C.PERMISSION_DENIED)
    assert "reveal" in err.details()


def test_reveal_privilege_shows_luhn_valid_pins_and_is_audited(stack: Any) -> None:
    op = vs(stack)
    batch = generate(op, count=20)
    pins = pins_of(stack, batch)
    assert len(pins) == 20 and all(len(p) == 16 and luhn_check_digit(p[:-1]) == p[-1] for p in pins.values())
    from engine.ports import AuditFilter

    with stack.root.uow() as uow:
        entries = uow.audit.list(AuditFilter(object_type="voucher_selection", object_id=batch.batch_id), None, 10)
    assert [(e.action, e.after) for e in entries] == [("voucher.reveal", {"revealed": 20})]


def test_overrides_and_bad_input(stack: Any) -> None:
    alpha, beta = vs(stack, "mvno-alpha"), vs(stack, "mvno-beta")
    b = generate(alpha, "vp-alpha-eur-10", 3, face_value="12.50", currency="GBP", dealer="shop-1")
    assert (b.face_value.amount_micros, b.face_value.currency, b.tenant_id) == (12_500_000, "GBP", "mvno-alpha")
    before = audit_count(stack)
    rpc_error(lambda: generate(alpha, "vp-nope", 1), C.NOT_FOUND)
    err = rpc_error(lambda: generate(alpha, "vp-alpha-eur-10", 0, currency="EUX", face_value="-1"), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"count", "currency"}
    err = rpc_error(lambda: generate(alpha, "vp-alpha-eur-10", 1_000_001), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"count"}
    err = rpc_error(lambda: generate(beta, "vp-beta-jpy-1000", 1, face_value="10.5"), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"face_value"}
    rpc_error(lambda: generate(alpha, "vp-alpha-eur-10", 1, tenant_id="mvno-beta"), C.PERMISSION_DENIED)
    assert audit_count(stack) == before


def test_redeem_credits_once_per_request_id(stack: Any) -> None:
    op, csr = vs(stack), vs(stack, "mno", "csr")
    batch = activate(op, generate(op, "vp-mno-eur-25", 3).batch_id)
    pins = pins_of(stack, batch)
    msisdn = subscriber(stack)
    first = csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"rq-{msisdn}"))
    assert (first.serial, first.credited.amount_micros, first.balance.amount_micros, first.credited.currency) == (
        batch.first_serial, 25_000_000, 25_000_000, "EUR")
    again = csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"rq-{msisdn}"))
    assert again == first
    second = csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial + 1], request_id=f"rq2-{msisdn}"))
    assert second.balance.amount_micros == 50_000_000
    assert second.valid_until.ToDatetime() > first.valid_until.ToDatetime()
    with stack.root.db.connect() as conn:
        assert conn.execute(select(prepaid_balances.c.balance_micros).where(prepaid_balances.c.msisdn == msisdn)).scalar() == 50_000_000
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[batch.first_serial], request_id=f"rq3-{msisdn}")),
                    C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "VOUCHER_NOT_ACTIVE"
    voucher = op.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)).voucher
    assert (voucher.state, voucher.redeemed_by) == (pb.VOUCHER_STATE_USED, msisdn)


def test_malformed_pins_are_refused_before_lookup(stack: Any) -> None:
    csr = vs(stack, "mno", "csr")
    msisdn = subscriber(stack)
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin="12ab", request_id="m1")), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"pin"}
    payload = "123456789012345"
    wrong_check = payload + str((int(luhn_check_digit(payload)) + 1) % 10)
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=wrong_check, request_id="m2")), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "PIN_CHECK_DIGIT" and wrong_check not in err.details()


def test_concurrent_redemptions_exactly_one_wins(stack: Any) -> None:
    op = vs(stack)
    batch = activate(op, generate(op, count=1).batch_id)
    pin = pins_of(stack, batch)[batch.first_serial]
    numbers = [subscriber(stack) for _ in range(12)]
    clients = [vs(stack, "mno", "csr") for _ in numbers]
    start = threading.Barrier(len(numbers))
    results: list[Any] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            results.append(clients[i].Redeem(pb.RedeemRequest(msisdn=numbers[i], pin=pin, request_id=f"race-{numbers[i]}")))
        except grpc.RpcError as err:
            results.append(precondition_reason(err))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(numbers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if not isinstance(r, str)]
    assert len(wins) == 1 and results.count("VOUCHER_NOT_ACTIVE") == len(numbers) - 1
    with stack.root.db.connect() as conn:
        total = conn.execute(select(func.sum(prepaid_balances.c.balance_micros)).where(prepaid_balances.c.msisdn.in_(numbers))).scalar()
    assert total == 10_000_000


def test_brute_force_bars_recharge_and_staff_lifts_it(stack: Any) -> None:
    op, csr = vs(stack), vs(stack, "mno", "csr")
    batch = activate(op, generate(op, count=1).batch_id)
    pin = pins_of(stack, batch)[batch.first_serial]
    msisdn = subscriber(stack)
    wrong = ("1" if pin[0] != "1" else "2") + pin[1:-1]
    wrong += luhn_check_digit(wrong)
    for i in range(5):
        err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=wrong, request_id=f"bf{i}-{msisdn}")), C.FAILED_PRECONDITION)
        assert precondition_reason(err) == "PIN_UNKNOWN"
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"ok-{msisdn}")), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "RECHARGE_BARRED"
    op.ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=msisdn, reason="verified caller"))
    assert csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"ok2-{msisdn}")).serial == batch.first_serial


def test_bulk_changes_report_changed_and_refused(stack: Any) -> None:
    op = vs(stack)
    batch = activate(op, generate(op, count=10).batch_id)
    first = batch.first_serial
    sel = pb.VoucherSelection(first_serial=first, last_serial=first + 2)
    r = op.ChangeVouchers(pb.ChangeVouchersRequest(selection=sel, event=pb.VOUCHER_EVENT_BLOCK, request_id="blk-1"))
    assert (r.changed_count, r.refused_count) == (3, 0)
    r = op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id), event=pb.VOUCHER_EVENT_UNBLOCK))
    assert (r.changed_count, r.refused_count) == (3, 7)
    assert [(g.state, g.count) for g in r.refused] == [(pb.VOUCHER_STATE_ACTIVE, 7)]
    op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(first_serial=first), event=pb.VOUCHER_EVENT_MARK_STOLEN))
    err = rpc_error(lambda: op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(first_serial=first),
                                                                       event=pb.VOUCHER_EVENT_UNBLOCK)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "VOUCHER_TRANSITION_REFUSED" and "stolen" in err.details()
    err = rpc_error(lambda: op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(), event=99)), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"event", "selection"}
    rpc_error(lambda: op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(first_serial=10**12),
                                                                 event=pb.VOUCHER_EVENT_BLOCK)), C.NOT_FOUND)


def test_amend_is_audited_with_before_and_after(stack: Any) -> None:
    op = vs(stack)
    batch = generate(op, count=2)
    v = op.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, face_value="11.00", dealer="d-1", set_dealer=True)).voucher
    assert (v.face_value.amount_micros, v.dealer) == (11_000_000, "d-1")
    from engine.ports import AuditFilter

    with stack.root.uow() as uow:
        [entry] = uow.audit.list(AuditFilter(object_type="voucher", object_id=str(batch.first_serial)), None, 10)
    assert entry.before == {"face_value_micros": 10_000_000, "dealer": ""} and entry.after == {"face_value_micros": 11_000_000, "dealer": "d-1"}


def test_tenant_isolation(stack: Any) -> None:
    alpha, beta = vs(stack, "mvno-alpha"), vs(stack, "mvno-beta")
    batch = generate(alpha, "vp-alpha-eur-10", 3)
    sel = pb.VoucherSelection(batch_id=batch.batch_id)
    before = audit_count(stack)
    rpc_error(lambda: beta.GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)), C.NOT_FOUND)
    rpc_error(lambda: beta.GetVoucher(pb.GetVoucherRequest(serial=batch.first_serial)), C.NOT_FOUND)
    rpc_error(lambda: beta.ChangeBatch(pb.ChangeBatchRequest(batch_id=batch.batch_id, event=pb.BATCH_EVENT_ACTIVATE)), C.NOT_FOUND)
    rpc_error(lambda: beta.ChangeVouchers(pb.ChangeVouchersRequest(selection=sel, event=pb.VOUCHER_EVENT_BLOCK)), C.NOT_FOUND)
    rpc_error(lambda: beta.AmendVoucher(pb.AmendVoucherRequest(serial=batch.first_serial, dealer="x", set_dealer=True)), C.NOT_FOUND)
    rpc_error(lambda: list(beta.StreamVouchers(pb.StreamVouchersRequest(selection=sel))), C.NOT_FOUND)  # like a missing batch
    range_only = pb.VoucherSelection(first_serial=batch.first_serial, last_serial=batch.last_serial)
    assert [v for m in beta.StreamVouchers(pb.StreamVouchersRequest(selection=range_only)) for v in m.vouchers] == []
    assert batch.batch_id not in {b.batch_id for b in beta.ListBatches(pb.ListBatchesRequest()).batches}
    rpc_error(lambda: generate(beta, "vp-alpha-eur-10", 1), C.NOT_FOUND)
    rpc_error(lambda: beta.RotateKeys(pb.RotateKeysRequest()), C.PERMISSION_DENIED)
    assert audit_count(stack) == before
    assert alpha.GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)).batch.state == pb.BATCH_STATE_GENERATED
    # the operator sees its MVNOs' batches
    assert vs(stack).GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)).batch.tenant_id == "mvno-alpha"


def test_rotate_keys_rewraps_and_pins_stay_readable(stack: Any) -> None:
    op = vs(stack)
    batch = generate(op, count=3)
    pins = pins_of(stack, batch)
    r = op.RotateKeys(pb.RotateKeysRequest(add_master_key=True))
    assert r.master_key_version >= 2 and r.batches_rewrapped >= 1
    assert op.GetBatch(pb.GetBatchRequest(batch_id=batch.batch_id)).batch.master_key_version == r.master_key_version
    assert pins_of(stack, batch) == pins
    assert op.RotateKeys(pb.RotateKeysRequest()).batches_rewrapped == 0


def test_cancelled_generation_leaves_nothing(stack: Any) -> None:
    op = vs(stack)
    before = count_rows(stack, voucher_batches)
    call = op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-5", count=200_000))
    first = next(call)
    assert first.HasField("progress")
    call.cancel()
    # the server abandons the transaction at its next progress step: its worker thread ends
    for worker in [t for t in threading.enumerate() if t.name == "voucher-generate"]:
        worker.join(timeout=120)
        assert not worker.is_alive(), "the generation worker kept running after the client cancelled"
    assert count_rows(stack, voucher_batches) == before
    assert count_rows(stack, voucher_batches, voucher_batches.c.profile_id == "vp-mno-eur-5") == 0
    assert count_rows(stack, vouchers, vouchers.c.face_value_micros == 5_000_000) == 0


def test_concurrent_retries_of_one_request_credit_once(stack: Any) -> None:
    op = vs(stack)
    batch = activate(op, generate(op, count=1).batch_id)
    pin = pins_of(stack, batch)[batch.first_serial]
    msisdn = subscriber(stack)
    clients = [vs(stack, "mno", "csr") for _ in range(8)]
    start = threading.Barrier(len(clients))
    results: list[Any] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            results.append(clients[i].Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=f"same-{msisdn}")))
        except grpc.RpcError as err:
            results.append(err.code())

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == results[0] for r in results), results
    assert results[0].credited.amount_micros == 10_000_000
    with stack.root.db.connect() as conn:
        assert conn.execute(select(prepaid_balances.c.balance_micros).where(prepaid_balances.c.msisdn == msisdn)).scalar() == 10_000_000


def test_pin_collision_with_another_batch_is_redrawn_in_the_store(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unique index finds a PIN another batch holds; the store asks for new rows inside the same transaction."""
    from engine.identity import Principal, Role
    from engine.vouchers import generation

    desk = stack.root.vouchers.desk
    admin = Principal("collider", "mno", Role.OPERATOR_ADMIN, is_operator=True)
    first = desk.generate_batch(admin, generation.BatchRequest("vp-mno-eur-10", 3))
    with stack.root.db.connect() as conn:
        taken = conn.execute(select(vouchers.c.lookup_hash).where(vouchers.c.serial == first.first_serial)).scalar()
    original = generation.BatchProducer._unique_pins
    draws = {"n": 0}

    def rigged(self, count):  # type: ignore[no-untyped-def]
        pins, hashes = original(self, count)
        draws["n"] += 1
        if draws["n"] == 1:
            hashes[1] = taken  # the second row of the first chunk repeats the other batch's PIN
        return pins, hashes

    monkeypatch.setattr(generation.BatchProducer, "_unique_pins", rigged)
    second = desk.generate_batch(admin, generation.BatchRequest("vp-mno-eur-10", 5))
    assert draws["n"] == 2
    assert count_rows(stack, vouchers, vouchers.c.batch_id == second.batch_id) == 5
    with stack.root.db.connect() as conn:
        owner = conn.execute(select(vouchers.c.batch_id).where(vouchers.c.lookup_hash == taken)).scalar()
    assert owner == first.batch_id


def test_rows_are_stored_narrow_and_batches_found_by_serial_range(stack: Any) -> None:
    # schema vouchers_0002: 16-byte lookup hash, nonce + ciphertext in one column, no batch index
    op = vs(stack)
    *_, a = op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=300))
    *_, b = op.GenerateBatch(pb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=200))
    with stack.root.db.connect() as conn:
        rows = conn.execute(select(vouchers.c.lookup_hash, vouchers.c.sealed).where(vouchers.c.batch_id == a.batch.batch_id)).all()
    assert len(rows) == 300
    assert {len(h) for h, _ in rows} == {16} and {len(s) for _, s in rows} == {12 + 16 + 16}
    columns = {c["name"] for c in inspect(stack.root.db).get_columns("vouchers")}
    assert "sealed" in columns and not {"nonce", "ciphertext"} & columns
    assert [i["name"] for i in inspect(stack.root.db).get_indexes("vouchers")] == ["uq_vouchers_lookup_hash"]
    # a batch's vouchers come back by its serial range, none of the neighbour batch
    for batch, n in ((a.batch, 300), (b.batch, 200)):
        got = [v for m in op.StreamVouchers(pb.StreamVouchersRequest(selection=pb.VoucherSelection(batch_id=batch.batch_id),
                                                                     chunk_size=1000)) for v in m.vouchers]
        assert [v.serial for v in got] == list(range(batch.first_serial, batch.first_serial + n))
        assert {v.batch_id for v in got} == {batch.batch_id}
