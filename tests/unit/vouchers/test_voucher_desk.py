"""Use cases: generation through the store port, lifecycle operations, amend, keys, tenant scope."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from engine.vouchers.desk import VoucherAmendment
from engine.vouchers.face_value import FaceValueError, parse_face_value_limits
from engine.vouchers.generation import BatchRequest
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.model import BatchState, VoucherState
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.rules import load_voucher_rules

from .factories import ADMIN, ALPHA_ADMIN, AUDITOR, CSR, PURGER, REPO, REVEALER, T0, World


def test_generate_stores_batch_and_rows_atomically_with_audit(world: World) -> None:
    progress: list[tuple[int, int]] = []
    batch = world.desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 150), progress=lambda d, t: progress.append((d, t)))
    state = world.store.state
    assert state.batches[batch.batch_id] == batch
    assert sorted(state.vouchers) == list(range(1, 151))
    assert {v.state for v in state.vouchers.values()} == {VoucherState.GENERATED}
    assert progress[-1] == (150, 150) and len(progress) == 3  # chunk size 64
    [entry] = state.audit
    assert (entry.action, entry.object_id, entry.subject) == ("voucher_batch.generate", batch.batch_id, "ops-admin")
    assert entry.after["count"] == 150 and "wrapped_data_key" not in entry.after
    second = world.desk.generate_batch(ADMIN, BatchRequest("vp-alpha-eur-10", 10))
    assert (second.first_serial, second.last_serial) == (151, 160)


def test_a_crash_mid_insert_leaves_nothing(world: World) -> None:
    world.store.fail_after_rows = 100
    with pytest.raises(RuntimeError):
        world.desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 150))
    assert world.store.state.batches == {} and world.store.state.vouchers == {} and world.store.state.audit == []


def test_pin_taken_by_another_batch_is_replaced_inside_the_transaction(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first = world.batch(count=5, activate=False)
    taken = next(iter(world.store.state.by_hash))
    # the next batch's first draw repeats a PIN of the first batch (as if the CSPRNG did)
    from engine.vouchers import generation

    original = generation.BatchProducer._unique_pins
    calls = {"n": 0}

    def rigged(self, count):  # type: ignore[no-untyped-def]
        pins, hashes = original(self, count)
        calls["n"] += 1
        if calls["n"] == 1:
            hashes[0] = taken
        return pins, hashes

    monkeypatch.setattr(generation.BatchProducer, "_unique_pins", rigged)
    second = world.desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 5))
    state = world.store.state
    assert calls["n"] == 2  # one replacement draw
    assert sorted(v.serial for v in state.vouchers.values() if v.batch_id == second.batch_id) == list(range(6, 11))
    assert state.by_hash[taken] in range(first.first_serial, first.last_serial + 1)


def test_unknown_profile_and_permissions(world: World) -> None:
    with pytest.raises(NotFound):
        world.desk.generate_batch(ADMIN, BatchRequest("vp-nope", 1))
    with pytest.raises(PermissionDenied):
        world.desk.generate_batch(AUDITOR, BatchRequest("vp-mno-eur-10", 1))
    with pytest.raises(PermissionDenied):  # an MVNO cannot make vouchers for another tenant
        world.desk.generate_batch(ALPHA_ADMIN, BatchRequest("vp-alpha-eur-10", 1, owner="mvno-beta"))
    with pytest.raises(NotFound):  # nor use another tenant's profile
        world.desk.generate_batch(ALPHA_ADMIN, BatchRequest("vp-beta-eur-20", 1, owner="mvno-alpha"))
    assert world.desk.generate_batch(ALPHA_ADMIN, BatchRequest("vp-alpha-eur-10", 3)).owner == "mvno-alpha"


def test_count_over_the_configured_maximum(world: World) -> None:
    with pytest.raises(InvalidArgument) as err:
        world.desk.generate_batch(ADMIN, BatchRequest("vp-mno-eur-10", 50_001))
    assert [v.field for v in err.value.violations] == ["count"]


def test_batch_activation_activates_its_vouchers(world: World) -> None:
    batch = world.batch(count=10, activate=False)
    activated = world.desk.change_batch(ADMIN, batch.batch_id, "activate")
    assert activated.state is BatchState.ACTIVE
    assert {v.state for v in world.store.state.vouchers.values()} == {VoucherState.ACTIVE}
    with pytest.raises(FailedPrecondition) as err:
        world.desk.change_batch(ADMIN, batch.batch_id, "activate")
    assert err.value.reason == "BATCH_TRANSITION_REFUSED" and "active" in err.value.message


def test_bulk_range_reports_changed_and_refused(world: World) -> None:
    batch = world.batch(count=10)
    world.desk.change_vouchers(ADMIN, "block", VoucherSelection(first_serial=1, last_serial=3))
    world.desk.change_vouchers(ADMIN, "mark_damaged", VoucherSelection(first_serial=4, last_serial=4))
    outcome = world.desk.change_vouchers(ADMIN, "unblock", VoucherSelection(batch_id=batch.batch_id), request_id="req-1")
    assert outcome.changed == {(VoucherState.BLOCKED, VoucherState.ACTIVE): 3}
    assert {(g.state, g.count) for g in outcome.refused} == {(VoucherState.ACTIVE, 6), (VoucherState.DAMAGED, 1)}
    entry = world.store.state.audit[-1]
    assert entry.action == "voucher.unblock" and entry.request_id == "req-1"
    assert entry.after["changed"] == {"blocked->active": 3} and entry.after["refused"] == {"active": 6, "damaged": 1}


def test_single_voucher_refusal_names_the_states(world: World) -> None:
    world.batch(count=3)
    world.desk.change_vouchers(ADMIN, "mark_stolen", VoucherSelection(first_serial=2, last_serial=2))
    with pytest.raises(FailedPrecondition) as err:
        world.desk.change_vouchers(ADMIN, "unblock", VoucherSelection(first_serial=2, last_serial=2))
    assert err.value.reason == "VOUCHER_TRANSITION_REFUSED"
    assert "stolen" in err.value.message and "unblock" in err.value.message
    with pytest.raises(NotFound):
        world.desk.change_vouchers(ADMIN, "block", VoucherSelection(first_serial=99, last_serial=99))
    with pytest.raises(InvalidArgument):
        world.desk.change_vouchers(ADMIN, "redeem", VoucherSelection(first_serial=1, last_serial=1))


def test_changing_the_rule_file_changes_what_is_allowed(world: World, tmp_path: Path) -> None:
    """A product team allows unblocking stolen vouchers: only rules/lifecycle/voucher.yaml changes."""
    shutil.copytree(REPO / "rules" / "lifecycle", tmp_path / "lifecycle")
    path = tmp_path / "lifecycle" / "voucher.yaml"
    text = path.read_text()
    assert "  - event: unblock\n    from: [blocked]\n" in text
    path.write_text(text.replace("  - event: unblock\n    from: [blocked]\n", "  - event: unblock\n    from: [blocked, stolen]\n"))
    world.desk._lifecycle = load_voucher_rules(tmp_path).lifecycle
    world.batch(count=2)
    world.desk.change_vouchers(ADMIN, "mark_stolen", VoucherSelection(first_serial=1, last_serial=1))
    world.desk.change_vouchers(ADMIN, "unblock", VoucherSelection(first_serial=1, last_serial=1))
    assert world.store.state.vouchers[1].state is VoucherState.ACTIVE


def test_the_rules_are_asked_with_batch_state_and_expiry(world: World) -> None:
    world.batch(count=2, expires_at=T0 + timedelta(days=1))
    world.clock.advance(days=2)
    world.desk.change_vouchers(ADMIN, "block", VoucherSelection(first_serial=1, last_serial=2))
    asked = [c for c in world.lifecycle.calls if c[2] == "block"]
    assert asked == [("voucher", "active", "block", {"batch_state": "active", "expired": True}, ())]


def test_manual_expire_is_refused_before_the_date(world: World) -> None:
    world.batch(count=2)
    outcome = world.desk.change_vouchers(ADMIN, "expire", VoucherSelection(first_serial=1, last_serial=2))
    assert outcome.changed_count == 0 and [(g.state, g.count) for g in outcome.refused] == [(VoucherState.ACTIVE, 2)]


def test_expire_due_moves_only_past_date_vouchers(world: World) -> None:
    world.batch(count=3, expires_at=T0 + timedelta(days=2))
    world.batch(count=2)
    world.clock.advance(days=3)
    outcome = world.desk.expire_due(ADMIN)
    assert outcome.changed == {(VoucherState.ACTIVE, VoucherState.EXPIRED): 3}
    states = {s: v.state for s, v in world.store.state.vouchers.items()}
    assert states == {1: VoucherState.EXPIRED, 2: VoucherState.EXPIRED, 3: VoucherState.EXPIRED, 4: VoucherState.ACTIVE,
                      5: VoucherState.ACTIVE}


def test_purge_after_retention(world: World) -> None:
    batch = world.batch(count=2, expires_at=T0 + timedelta(days=1))
    world.clock.advance(days=2)
    world.desk.expire_due(ADMIN)
    world.desk.change_batch(ADMIN, batch.batch_id, "expire")
    purged = world.desk.change_batch(PURGER, batch.batch_id, "purge")
    assert purged.state is BatchState.PURGED
    assert {v.state for v in world.store.state.vouchers.values()} == {VoucherState.PURGED}
    assert world.store.state.by_hash == {}  # purged PINs are forgotten
    assert all(v.ciphertext == b"" for v in world.store.state.vouchers.values())


def test_amend_records_before_and_after(world: World) -> None:
    world.batch(count=2)
    new_expiry = T0 + timedelta(days=900)
    amended = world.desk.amend(ADMIN, 1, VoucherAmendment(expires_at=new_expiry, face_value="12.00", owner="mvno-alpha", dealer="d-9")).voucher
    assert (amended.expires_at, amended.face_value_micros, amended.owner, amended.dealer) == (new_expiry, 12_000_000, "mvno-alpha", "d-9")
    assert world.store.state.vouchers[1] .face_value_micros == 12_000_000
    entry = world.store.state.audit[-1]
    assert entry.action == "voucher.amend"
    assert entry.before == {"face_value_micros": 10_000_000, "expires_at": (T0 + timedelta(days=365)).isoformat(), "owner": "mno", "dealer": ""}
    assert entry.after == {"face_value_micros": 12_000_000, "expires_at": new_expiry.isoformat(), "owner": "mvno-alpha", "dealer": "d-9"}


def test_amend_is_refused_when_the_state_forbids_it(world: World) -> None:
    world.batch(count=1)
    world.desk.change_vouchers(ADMIN, "mark_damaged", VoucherSelection(first_serial=1, last_serial=1))
    with pytest.raises(FailedPrecondition) as err:
        world.desk.amend(ADMIN, 1, VoucherAmendment(dealer="x"))
    assert err.value.reason == "VOUCHER_TRANSITION_REFUSED" and "damaged" in err.value.message
    with pytest.raises(InvalidArgument) as bad:
        world.desk.amend(ADMIN, 1, VoucherAmendment(face_value="1.001", expires_at=T0 - timedelta(days=1)))
    assert sorted(v.field for v in bad.value.violations) == ["expire_time", "face_value"]


def test_key_rotation_rewraps_without_touching_vouchers(world: World, keys: StaticKeyProvider) -> None:
    batch = world.batch(count=5)
    pins_before = world.pins(batch)
    vouchers_before = dict(world.store.state.vouchers)
    rotated_keys = StaticKeyProvider({1: keys.master_key(1), 2: bytes(32)}, 2, {1: keys.lookup_key(1)}, 1)
    world.desk._keys = rotated_keys  # the composition root would reload the keyring
    assert world.desk.rotate_keys(ADMIN) == 1
    assert world.desk.rotate_keys(ADMIN) == 0
    assert world.store.state.batches[batch.batch_id].master_key_version == 2
    assert world.store.state.audit[-1].action == "voucher_batch.rewrap_key"
    assert (world.store.state.audit[-1].before, world.store.state.audit[-1].after) == ({"master_version": 1}, {"master_version": 2})
    assert world.store.state.vouchers == vouchers_before
    # with master key 1 gone, the PINs are still readable through the re-wrapped key
    world.desk._keys = StaticKeyProvider({2: bytes(32)}, 2, {1: keys.lookup_key(1)}, 1)
    assert world.pins(batch) == pins_before


def test_destroying_the_data_key_shreds_the_pins(world: World) -> None:
    batch = world.batch(count=3)
    world.desk.destroy_data_key(ADMIN, batch.batch_id, reason="retention over")
    with pytest.raises(FailedPrecondition) as err:
        world.pins(batch)
    assert err.value.reason == "DATA_KEY_DESTROYED"
    assert world.store.state.audit[-1].after == {"shredded": True, "reason": "retention over"}


def test_reveal_needs_the_privilege_and_is_audited(world: World) -> None:
    batch = world.batch(count=3)
    with pytest.raises(PermissionDenied):
        next(world.desk.stream_vouchers(ADMIN, VoucherSelection(batch_id=batch.batch_id), reveal=True))
    plain = [r for c in world.desk.stream_vouchers(CSR, VoucherSelection(batch_id=batch.batch_id), chunk_size=2) for r in c]
    assert [r.pin for r in plain] == [None, None, None]
    pins = world.pins(batch)
    assert len(pins) == 3 and all(len(p) == 16 for p in pins.values())
    entry = world.store.state.audit[-1]
    assert (entry.action, entry.subject, entry.after) == ("voucher.reveal", REVEALER.subject, {"revealed": 3})


def test_mvno_sees_only_its_own_vouchers(world: World) -> None:
    mno_batch = world.batch("vp-mno-eur-10", count=2)
    alpha_batch = world.batch("vp-alpha-eur-10", count=2)
    assert [b.batch_id for b in world.desk.list_batches(ALPHA_ADMIN)] == [alpha_batch.batch_id]
    with pytest.raises(NotFound):
        world.desk.get_batch(ALPHA_ADMIN, mno_batch.batch_id)
    with pytest.raises(NotFound):
        world.desk.get_voucher(ALPHA_ADMIN, mno_batch.first_serial)
    outcome = world.desk.change_vouchers(ALPHA_ADMIN, "block", VoucherSelection(first_serial=1, last_serial=4))
    assert outcome.changed_count == 2
    assert world.store.state.vouchers[1].state is VoucherState.ACTIVE
    assert world.store.state.vouchers[3].state is VoucherState.BLOCKED


def test_a_csr_amends_expiry_and_value_only_up_to_the_configured_limit(world: World) -> None:
    """Issue #13 item 8: value changes are an administrator's; a CSR stays within the configured limit."""
    world.batch("vp-mno-eur-10", count=1)
    world.batch("vp-mno-usd-20", count=1)
    later = T0 + timedelta(days=800)
    assert world.desk.amend(CSR, 1, VoucherAmendment(expires_at=later)).voucher.expires_at == later
    with pytest.raises(PermissionDenied) as err:  # no limit configured: expiry only
        world.desk.amend(CSR, 1, VoucherAmendment(face_value="5.00"))
    assert "voucher.admin" in err.value.message
    world.desk.settings = replace(world.desk.settings, csr_face_value_limits=parse_face_value_limits("EUR:20.00"))
    assert world.desk.amend(CSR, 1, VoucherAmendment(face_value="20.00")).voucher.face_value_micros == 20_000_000
    with pytest.raises(PermissionDenied) as err:
        world.desk.amend(CSR, 1, VoucherAmendment(face_value="20.01"))
    assert "up to 20.00 EUR" in err.value.message
    with pytest.raises(PermissionDenied):  # another currency has no limit
        world.desk.amend(CSR, 2, VoucherAmendment(face_value="1.00"))
    for owner_or_dealer in (VoucherAmendment(owner="mvno-alpha"), VoucherAmendment(dealer="d")):
        with pytest.raises(PermissionDenied):
            world.desk.amend(CSR, 1, owner_or_dealer)
    assert world.store.state.vouchers[1].face_value_micros == 20_000_000
    assert world.desk.amend(ADMIN, 1, VoucherAmendment(face_value="500.00")).voucher.face_value_micros == 500_000_000


def test_csr_limits_setting_is_parsed_strictly() -> None:
    assert parse_face_value_limits("EUR:20.00, JPY:3000") == {"EUR": 20_000_000, "JPY": 3_000_000_000}
    assert parse_face_value_limits("") == {}
    for bad, code in (("EUR 20", "limit.syntax"), ("EUR:1,EUR:2", "limit.duplicate"), ("JPY:1.5", "money.precision"),
                      ("XXX:1", "currency.unknown")):
        with pytest.raises(FaceValueError) as err:
            parse_face_value_limits(bad)
        assert err.value.code == code


def test_generation_and_activation_need_the_admin_permission(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.desk.generate_batch(CSR, BatchRequest("vp-mno-eur-10", 1))
    batch = world.batch(count=2, activate=False)
    with pytest.raises(PermissionDenied):
        world.desk.change_batch(CSR, batch.batch_id, "activate")
    with pytest.raises(PermissionDenied):
        world.desk.change_vouchers(CSR, "unblock", VoucherSelection(batch_id=batch.batch_id))
    assert world.desk.change_batch(CSR, batch.batch_id, "block").state is BatchState.BLOCKED


def test_amend_refuses_an_owner_that_does_not_exist(world: World) -> None:
    world.batch(count=1)
    with pytest.raises(InvalidArgument) as err:
        world.desk.amend(ADMIN, 1, VoucherAmendment(owner="mvno-gamma"))
    assert [(v.field, v.description) for v in err.value.violations] == [("tenant_id", "there is no tenant mvno-gamma")]
    assert world.store.state.vouchers[1].owner == "mno"


def test_expire_with_nothing_due_is_an_empty_success(world: World) -> None:
    world.batch(count=2)
    before = len(world.store.state.audit)
    outcome = world.desk.expire_due(ADMIN)
    assert (outcome.changed_count, outcome.refused_count) == (0, 0) and len(world.store.state.audit) == before
