"""Distribution files through the encryption port: content, totals, what the lifecycle leaves out, permissions.

The OpenPGP adapter itself (real gpg) is tested in tests/integration/test_vouchers_gpg.py.
"""

from __future__ import annotations

import hashlib
import io

import pytest

from engine.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from engine.vouchers.model import VoucherState
from engine.vouchers.ports import VoucherSelection

from .factories import ADMIN, CSR, REVEALER, World
from .fakes import PlainSealer


def _export(world: World, selection: VoucherSelection, **kw: object) -> tuple[object, str, bytes]:
    out = io.BytesIO()
    receipt = world.distributor.export(REVEALER, selection, PlainSealer(), out, **kw)  # type: ignore[arg-type]
    data = out.getvalue()
    return receipt, PlainSealer.opened(data), data


def test_file_has_header_rows_and_a_receipt_with_its_hash(world: World) -> None:
    batch = world.batch("vp-mno-eur-10", count=25)
    pins = world.pins(batch)
    receipt, text, data = _export(world, VoucherSelection(batch_id=batch.batch_id), request_id="exp-1", file_name="b.gpg")
    assert receipt.sha256 == hashlib.sha256(data).hexdigest() and receipt.size == len(data)  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert lines[:6] == [
        "# rulebill voucher distribution file v1",
        f"# batch_id: {batch.batch_id}",
        f"# created_at: {world.clock.now().isoformat()}",
        "# count: 25",
        "# face_value_total: EUR 250.00",
        "serial,pin,denomination,currency,expiry",
    ]
    rows = [line.split(",") for line in lines[6:]]
    assert rows[0] == ["MN0000000001", pins[1], "10.00", "EUR", batch.expires_at.isoformat()]
    assert {r[1] for r in rows} == set(pins.values()) and receipt.left_out == ()  # type: ignore[attr-defined]
    entry = world.store.state.audit[-1]
    assert (entry.action, entry.request_id, entry.after["sha256"], entry.after["file"]) == ("voucher.export", "exp-1",
                                                                                             receipt.sha256, "b.gpg")  # type: ignore[attr-defined]


def test_serial_range_across_currencies(world: World) -> None:
    eur = world.batch("vp-mno-eur-10", count=3)
    usd = world.batch("vp-mno-usd-20", count=3)
    receipt, text, _ = _export(world, VoucherSelection(first_serial=2, last_serial=5))
    assert receipt.count == 4 and receipt.totals == {"EUR": 20_000_000, "USD": 40_000_000}  # type: ignore[attr-defined]
    assert f"# batch_id: {','.join(sorted([eur.batch_id, usd.batch_id]))}" in text
    assert "# face_value_total: EUR 20.00\n# face_value_total: USD 40.00\n" in text
    assert [line.split(",")[0] for line in text.splitlines()[7:]] == ["MN0000000002", "MN0000000003", "MU0000000004", "MU0000000005"]


def test_only_states_the_lifecycle_allows_are_exported_and_the_rest_is_reported(world: World) -> None:
    """Issue #13 item 12: used and stolen vouchers are left out of the file and its totals, and reported."""
    batch = world.batch("vp-mno-eur-10", count=6)
    pins = world.pins(batch)
    world.recharger.redeem(CSR, "491701234567", pins[1], "r-1")  # used
    world.desk.change_vouchers(ADMIN, "mark_stolen", VoucherSelection(first_serial=2, last_serial=2))
    world.desk.change_vouchers(ADMIN, "block", VoucherSelection(first_serial=3, last_serial=3))
    receipt, text, _ = _export(world, VoucherSelection(batch_id=batch.batch_id))
    assert receipt.count == 3 and receipt.totals == {"EUR": 30_000_000}  # type: ignore[attr-defined]
    assert "# count: 3\n# face_value_total: EUR 30.00\n" in text
    assert [line.split(",")[0] for line in text.splitlines()[6:]] == ["MN0000000004", "MN0000000005", "MN0000000006"]
    assert all(pins[s] not in text for s in (1, 2, 3))
    assert [(g.state, g.count) for g in receipt.left_out] == [  # type: ignore[attr-defined]
        (VoucherState.BLOCKED, 1), (VoucherState.STOLEN, 1), (VoucherState.USED, 1)]
    assert all("export" in g.reason for g in receipt.left_out)  # type: ignore[attr-defined]
    assert world.store.state.audit[-1].after["left_out"] == {"blocked": 1, "stolen": 1, "used": 1}


def test_nothing_exportable_is_a_clear_refusal(world: World) -> None:
    batch = world.batch("vp-mno-eur-10", count=2)
    world.desk.change_vouchers(ADMIN, "mark_stolen", VoucherSelection(batch_id=batch.batch_id))
    out = io.BytesIO()
    with pytest.raises(FailedPrecondition) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), PlainSealer(), out)
    assert err.value.reason == "NOTHING_TO_EXPORT" and "2 stolen" in err.value.message and out.getvalue() == b""
    with pytest.raises(NotFound):
        world.distributor.export(REVEALER, VoucherSelection(first_serial=999, last_serial=999), PlainSealer(), out)


def test_unusable_keys_fail_before_anything_is_written(world: World) -> None:
    batch = world.batch(count=2)
    before = len(world.store.state.audit)
    out = io.BytesIO()
    with pytest.raises(InvalidArgument) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), PlainSealer(refuse="recipient_public_key"), out)
    assert [v.field for v in err.value.violations] == ["recipient_public_key"]
    assert out.getvalue() == b"" and len(world.store.state.audit) == before


def test_export_needs_reveal_privilege_and_a_live_data_key(world: World) -> None:
    batch = world.batch(count=2)
    with pytest.raises(PermissionDenied):
        world.distributor.export(ADMIN, VoucherSelection(batch_id=batch.batch_id), PlainSealer(), io.BytesIO())
    world.desk.destroy_data_key(ADMIN, batch.batch_id)
    out = io.BytesIO()
    with pytest.raises(FailedPrecondition) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), PlainSealer(), out)
    assert err.value.reason == "DATA_KEY_DESTROYED" and out.getvalue() == b""


def test_an_export_over_two_owners_is_audited_under_each_with_its_own_vouchers(world: World) -> None:
    alpha = world.batch("vp-alpha-eur-10", count=2)
    beta = world.batch("vp-beta-eur-20", count=3)
    world.desk.change_vouchers(ADMIN, "block", VoucherSelection(first_serial=beta.first_serial, last_serial=beta.first_serial))
    receipt, _, _ = _export(world, VoucherSelection(first_serial=alpha.first_serial, last_serial=beta.last_serial), request_id="x-2")
    assert receipt.count == 4  # type: ignore[attr-defined]
    entries = {e.object_tenant_id: e.after for e in world.store.state.audit if e.action == "voucher.export"}
    assert {t: (a["count"], a["batches"], a["left_out"]) for t, a in entries.items()} == {
        "mvno-alpha": (2, [alpha.batch_id], {}), "mvno-beta": (2, [beta.batch_id], {"blocked": 1})}
    assert {a["sha256"] for a in entries.values()} == {receipt.sha256}  # type: ignore[attr-defined]


def test_export_to_seals_with_the_sealer_the_distributor_was_built_with(world: World) -> None:
    """ExportVouchers' path: the distributor makes the sealer for the request's recipient key and armour from the
    factory the composition root gave it, after the caller's reveal permission is checked (a caller without it learns
    nothing about the sealer); built without one, a clear FAILED_PRECONDITION."""
    from engine.vouchers.distribution import Distributor

    asked: list[tuple[bytes, bool]] = []

    def sealers(recipient: bytes, armor: bool) -> PlainSealer:
        asked.append((recipient, armor))
        return PlainSealer()

    batch = world.batch("vp-mno-eur-10", count=3)
    built = Distributor(world.store, world.keys, world.lifecycle, world.clock, sealers=sealers)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        built.export_to(CSR, VoucherSelection(batch_id=batch.batch_id), b"KEY", True, io.BytesIO())
    assert asked == []
    out = io.BytesIO()
    receipt = built.export_to(REVEALER, VoucherSelection(batch_id=batch.batch_id), b"KEY", True, out, "exp-2")
    assert asked == [(b"KEY", True)] and receipt.count == 3
    assert {line.split(",")[1] for line in PlainSealer.opened(out.getvalue()).splitlines()[6:]} == set(world.pins(batch).values())
    with pytest.raises(FailedPrecondition) as none:
        world.distributor.export_to(REVEALER, VoucherSelection(batch_id=batch.batch_id), b"KEY", False, io.BytesIO())
    assert none.value.reason == "NO_SEALER"
