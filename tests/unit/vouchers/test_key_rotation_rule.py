"""RotateKeys' rule lives in VoucherDesk.rotate_master_key: the operator alone, a new master key only in a key file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import FailedPrecondition
from engine.vouchers.desk import VoucherDesk
from engine.vouchers.keyring import ReloadableKeyProvider
from servers.adapters.keyring_file import generate_keyring, key_file_provider
from tests.unit.vouchers.factories import ADMIN, World


def _desk_on_key_file(world: World, path: Path) -> tuple[VoucherDesk, ReloadableKeyProvider]:
    generate_keyring(path)
    keys = key_file_provider(path)
    desk = VoucherDesk(world.store, world.desk._profiles, keys, world.lifecycle, world.clock, world.desk.settings, key_file=keys)
    return desk, keys


def test_the_operator_adds_a_master_key_and_every_batch_is_rewrapped(world: World, tmp_path: Path) -> None:
    desk, keys = _desk_on_key_file(world, tmp_path / "keyring.json")
    world.desk = desk
    batch = world.batch(count=3)
    pins = world.pins(batch)
    done = desk.rotate_master_key(ADMIN, add_version=True)
    assert (done.batches_rewrapped, done.master_key_version) == (1, 2) and keys.current_master_version() == 2
    assert world.store.state.batches[batch.batch_id].master_key_version == 2 and world.pins(batch) == pins
    assert desk.rotate_master_key(ADMIN).batches_rewrapped == 0


def test_only_the_operator_rotates(world: World, tmp_path: Path) -> None:
    desk, keys = _desk_on_key_file(world, tmp_path / "keyring.json")
    not_operator = replace(ADMIN, tenant_id="mvno-alpha", is_operator=False)
    with pytest.raises(FailedPrecondition) as refused:
        desk.rotate_master_key(not_operator, add_version=True)
    assert refused.value.reason == "OPERATOR_ONLY" and keys.current_master_version() == 1


def test_keys_given_as_settings_cannot_grow_a_version(world: World) -> None:
    # the world's desk has keys but no key file: as with voucher_master_keys from the environment
    with pytest.raises(FailedPrecondition) as refused:
        world.desk.rotate_master_key(ADMIN, add_version=True)
    assert refused.value.reason == "KEYS_FROM_ENVIRONMENT"
