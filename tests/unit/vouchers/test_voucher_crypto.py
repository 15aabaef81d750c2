"""Lookup hashes, PIN envelope encryption, key files and key rotation primitives."""

from __future__ import annotations

import base64
import hmac
import json
import os
import stat
from pathlib import Path

import pytest

from engine.errors import FailedPrecondition
from engine.vouchers.crypto import (
    KEY_WRAPS,
    LOOKUP_HASH_BYTES,
    PIN_CIPHERS,
    CryptoSettings,
    KeyUnavailable,
    LookupHasher,
    PinSealer,
    WrappedDataKey,
    associated_data,
    split_sealed,
    lookup_hashers,
    new_data_key,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from engine.vouchers.keyring import KeyringError, StaticKeyProvider, keys_from_environment
from servers.adapters.keyring_file import add_master_key, generate_keyring, load_keyring


@pytest.mark.parametrize("key", [b"k", os.urandom(32), os.urandom(64), os.urandom(100)], ids=lambda key: f"{len(key)}-bytes")
def test_lookup_hash_is_truncated_hmac_sha256(key: bytes) -> None:
    hasher = LookupHasher(key, 1)
    pins = [b"1234567890123452", b"", os.urandom(40)]
    assert LOOKUP_HASH_BYTES == 16
    for pin in pins:
        assert hasher.hash(pin) == hmac.digest(key, pin, "sha256")[:16]
    assert hasher.hash_many(pins) == [hmac.digest(key, p, "sha256")[:16] for p in pins]


def test_sealed_is_nonce_then_ciphertext() -> None:
    sealer = PinSealer("aes-256-gcm", os.urandom(32), "vb-0123456789abcdef")
    nonces = [os.urandom(12), os.urandom(12)]
    sealed = sealer.seal_many([7, 8], nonces, [b"1234567890123452", b"9999999999999995"])
    for serial, nonce, box, pin in zip([7, 8], nonces, sealed, [b"1234567890123452", b"9999999999999995"]):
        assert split_sealed(box)[0] == nonce
        assert sealer.open(serial, *split_sealed(box)) == pin
        assert box == nonce + sealer.seal(serial, nonce, pin)


def test_lookup_hashers_try_current_version_first() -> None:
    keys = StaticKeyProvider({1: os.urandom(32)}, 1, {1: os.urandom(32), 2: os.urandom(32), 3: os.urandom(32)}, 2)
    assert [h.version for h in lookup_hashers(keys)] == [2, 3, 1]


@pytest.mark.parametrize("cipher", sorted(PIN_CIPHERS))
def test_pin_round_trip_and_binding_to_batch_and_serial(cipher: str) -> None:
    key = new_data_key()
    sealer = PinSealer(cipher, key, "vb-0000000000000001")
    nonce = os.urandom(12)
    ct = sealer.seal(42, nonce, b"1234567890123452")
    assert b"1234567890123452" not in ct
    assert sealer.open(42, nonce, ct) == b"1234567890123452"
    with pytest.raises(FailedPrecondition) as moved:
        sealer.open(43, nonce, ct)  # the same ciphertext on another serial does not open
    assert moved.value.reason == "PIN_CIPHERTEXT_INVALID"
    assert "1234567890123452" not in str(moved.value)
    other = PinSealer(cipher, key, "vb-0000000000000002")
    with pytest.raises(FailedPrecondition):
        other.open(42, nonce, ct)


def test_associated_data_names_batch_and_serial() -> None:
    assert associated_data("vb-00", 7) == b"vb-00\x007"


def test_unknown_algorithms_are_refused_by_configuration() -> None:
    with pytest.raises(ValueError, match="unknown PIN cipher"):
        CryptoSettings(pin_cipher="rot13")
    with pytest.raises(ValueError, match="unknown key wrap"):
        CryptoSettings(key_wrap="xor")
    assert CryptoSettings("chacha20-poly1305", "aes-256-kw").pin_cipher == "chacha20-poly1305"


@pytest.mark.parametrize("algorithm", sorted(KEY_WRAPS))
def test_data_key_wrap_unwrap_and_rotation(algorithm: str) -> None:
    keys = StaticKeyProvider({1: os.urandom(32)}, 1, {1: os.urandom(32)}, 1)
    data_key = new_data_key()
    wrapped = wrap_data_key(keys, data_key, "vb-1", algorithm)
    assert wrapped.master_version == 1 and wrapped.wrap_algorithm == algorithm and data_key not in wrapped.wrapped
    assert unwrap_data_key(keys, wrapped, "vb-1") == data_key
    rotated_keys = StaticKeyProvider({1: keys.master_key(1), 2: os.urandom(32)}, 2, {1: keys.lookup_key(1)}, 1)
    rewrapped = rewrap_data_key(rotated_keys, wrapped, "vb-1")
    assert rewrapped.master_version == 2 and rewrapped.wrapped != wrapped.wrapped
    assert unwrap_data_key(rotated_keys, rewrapped, "vb-1") == data_key
    # once version 1 is retired, only the re-wrapped key still opens
    retired = StaticKeyProvider({2: rotated_keys.master_key(2)}, 2, {1: keys.lookup_key(1)}, 1)
    assert unwrap_data_key(retired, rewrapped, "vb-1") == data_key
    with pytest.raises(KeyUnavailable):
        unwrap_data_key(retired, wrapped, "vb-1")


def test_wrong_master_key_is_a_clear_error() -> None:
    keys = StaticKeyProvider.random()
    wrapped = wrap_data_key(keys, new_data_key(), "vb-1")
    other = StaticKeyProvider({1: os.urandom(32)}, 1, {1: os.urandom(32)}, 1)
    with pytest.raises(FailedPrecondition) as err:
        unwrap_data_key(other, wrapped, "vb-1")
    assert err.value.reason == "DATA_KEY_CORRUPT"


def test_gcm_wrap_binds_the_batch_id() -> None:
    keys = StaticKeyProvider.random()
    wrapped = wrap_data_key(keys, new_data_key(), "vb-1", "aes-256-gcm")
    with pytest.raises(FailedPrecondition):
        unwrap_data_key(keys, WrappedDataKey(wrapped.wrapped, "aes-256-gcm", 1), "vb-2")


def test_generate_keyring_is_private_and_loads(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "sub" / "keyring.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = load_keyring(path)
    assert keys.current_master_version() == 1 and len(keys.master_key(1)) == 32
    assert keys.lookup_versions() == [1]
    with pytest.raises(KeyringError, match="already exists"):
        generate_keyring(path)


def test_group_readable_keyring_is_refused(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.json")
    os.chmod(path, 0o640)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring(path)


def test_add_master_key_keeps_old_versions(tmp_path: Path) -> None:
    path = generate_keyring(tmp_path / "keyring.json")
    first = load_keyring(path).master_key(1)
    assert add_master_key(path) == 2
    keys = load_keyring(path)
    assert keys.current_master_version() == 2 and keys.master_key(1) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "not a voucher keyring"),
        (lambda d: d["master"].update(current=9), "current master key version 9"),
        (lambda d: d["lookup"]["keys"].update({"1": "!!!"}), "not valid base64"),
        (lambda d: d["lookup"]["keys"].update({"1": base64.b64encode(b"short").decode()}), "must be 32 bytes"),
        (lambda d: d.pop("master"), "'master' must be a mapping"),
    ],
)
def test_bad_keyrings_are_explained_without_key_material(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    path = generate_keyring(tmp_path / "keyring.json")
    doc = json.loads(path.read_text())
    secret_texts = [v for part in ("master", "lookup") for v in doc[part]["keys"].values()]
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyringError, match=message) as err:
        load_keyring(path)
    assert not any(s in str(err.value) for s in secret_texts)


def test_keys_from_environment() -> None:
    m1, m2, l1 = (base64.b64encode(os.urandom(32)).decode() for _ in range(3))
    keys = keys_from_environment({
        "RULEBILL_VOUCHER_MASTER_KEYS": f"1:{m1}, 2:{m2}",
        "RULEBILL_VOUCHER_LOOKUP_KEYS": f"1:{l1}",
    })
    assert keys.current_master_version() == 2  # highest version unless told otherwise
    assert keys.master_key(1) == base64.b64decode(m1)
    keys = keys_from_environment({
        "RULEBILL_VOUCHER_MASTER_KEYS": f"1:{m1},2:{m2}", "RULEBILL_VOUCHER_MASTER_CURRENT": "1",
        "RULEBILL_VOUCHER_LOOKUP_KEYS": f"1:{l1}",
    })
    assert keys.current_master_version() == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "RULEBILL_VOUCHER_MASTER_KEYS is not set"),
        ({"RULEBILL_VOUCHER_MASTER_KEYS": "abc", "RULEBILL_VOUCHER_LOOKUP_KEYS": "x"}, "'<version>:<base64 key>'"),
    ],
)
def test_environment_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(KeyringError, match=message):
        keys_from_environment(env)
