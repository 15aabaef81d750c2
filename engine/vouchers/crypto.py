"""Voucher cryptography: keyed lookup hashes and envelope encryption of PINs.

* Lookup: ``HMAC-SHA256(lookup_key[version], pin)`` truncated to its first 16 bytes,
  stored under a unique index; redemption recomputes it, so the PIN itself is
  never stored in clear.
* Recovery (print files): each batch has a random 256-bit data key; every PIN is
  sealed with an AEAD under it, the batch id and serial bound in as associated
  data (a ciphertext copied to another row does not open).  The data key is
  stored wrapped by a versioned master key: rotation re-wraps data keys only,
  destroying a data key shreds the batch's PINs.

Algorithms are chosen by configuration and their ids stored with each batch,
so old batches stay readable when the default changes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from engine.errors import FailedPrecondition

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
# The lookup hash is HMAC-SHA256 truncated to 128 bits (RFC 2104 section 5 allows truncation to any
# length >= half the hash output).  It halves the unique index, which is what bulk generation pays for.
# Collisions: by the birthday bound, among n live vouchers P(any two share a lookup hash) <= n**2 / 2**129,
# i.e. about 1.5e-21 for n = 10**9 -- negligible; and a collision is not even an error: the unique index
# refuses the second voucher and generation draws it a new PIN (the same path as two equal PINs).
# Guessing: 2**128 possible values against 10**15 possible PINs, so the truncation gives an attacker nothing.
LOOKUP_HASH_BYTES = 16


class _Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


# PIN ciphers: id -> AEAD class taking a 32-byte key and 12-byte nonces
PIN_CIPHERS: dict[str, Callable[[bytes], _Aead]] = {
    "aes-256-gcm": AESGCM,
    "chacha20-poly1305": ChaCha20Poly1305,
}
DEFAULT_PIN_CIPHER = "aes-256-gcm"


def _wrap_kw(master: bytes, data_key: bytes, context: bytes) -> bytes:
    return aes_key_wrap(master, data_key)  # RFC 3394 has no associated data; context is implied by the row


def _unwrap_kw(master: bytes, wrapped: bytes, context: bytes) -> bytes:
    return aes_key_unwrap(master, wrapped)


def _wrap_gcm(master: bytes, data_key: bytes, context: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, data_key, context)


def _unwrap_gcm(master: bytes, wrapped: bytes, context: bytes) -> bytes:
    return AESGCM(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)


# key wrapping: id -> (wrap, unwrap); "context" is the batch id for the AEAD variant
KEY_WRAPS: dict[str, tuple[Callable[[bytes, bytes, bytes], bytes], Callable[[bytes, bytes, bytes], bytes]]] = {
    "aes-256-kw": (_wrap_kw, _unwrap_kw),
    "aes-256-gcm": (_wrap_gcm, _unwrap_gcm),
}
DEFAULT_KEY_WRAP = "aes-256-gcm"


@dataclass(frozen=True)
class CryptoSettings:
    """Which algorithms new batches use (old batches keep the ids they were made with)."""

    pin_cipher: str = DEFAULT_PIN_CIPHER
    key_wrap: str = DEFAULT_KEY_WRAP

    def __post_init__(self) -> None:
        if self.pin_cipher not in PIN_CIPHERS:
            raise ValueError(f"unknown PIN cipher {self.pin_cipher!r}; known: {', '.join(sorted(PIN_CIPHERS))}")
        if self.key_wrap not in KEY_WRAPS:
            raise ValueError(f"unknown key wrap {self.key_wrap!r}; known: {', '.join(sorted(KEY_WRAPS))}")


class KeyProvider(Protocol):
    """Where master keys and lookup keys come from (a key file, the environment, an HSM later).

    Versions are small positive integers; old versions stay available for
    reading until every batch wrapped or hashed with them is gone.
    """

    def current_master_version(self) -> int: ...
    def master_key(self, version: int) -> bytes: ...
    def current_lookup_version(self) -> int: ...
    def lookup_key(self, version: int) -> bytes: ...
    def lookup_versions(self) -> list[int]: ...


class KeyUnavailable(FailedPrecondition):
    def __init__(self, what: str, version: int) -> None:
        super().__init__("KEY_UNAVAILABLE", f"{what} key version {version} is not in the keyring", f"{what}-key/{version}")


class LookupHasher:
    """HMAC-SHA256 with the key pads computed once; per PIN only two hash copies.

    Equivalent to ``hmac.digest(key, pin, "sha256")[:LOOKUP_HASH_BYTES]`` (tests
    check that), about twice as fast for short messages.  Generation and
    redemption both hash through this class, so they always agree.
    """

    def __init__(self, key: bytes, version: int) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.version = version
        self._inner = hashlib.sha256(key.translate(bytes(b ^ 0x36 for b in range(256))))
        self._outer = hashlib.sha256(key.translate(bytes(b ^ 0x5C for b in range(256))))

    def hash(self, pin: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(pin)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:LOOKUP_HASH_BYTES]

    def hash_many(self, pins: Iterable[bytes]) -> list[bytes]:
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        out: list[bytes] = []
        append = out.append
        for pin in pins:
            inner = inner_copy()
            inner.update(pin)
            outer = outer_copy()
            outer.update(inner.digest())
            append(outer.digest()[:LOOKUP_HASH_BYTES])
        return out


def lookup_versions(keys: KeyProvider) -> list[int]:
    """Every live lookup key version, the current one first (redemption tries them all)."""
    current = keys.current_lookup_version()
    return [current] + sorted((v for v in keys.lookup_versions() if v != current), reverse=True)


def lookup_hashers(keys: KeyProvider) -> list[LookupHasher]:
    """One hasher per lookup key version, the current one first."""
    return [LookupHasher(keys.lookup_key(v), v) for v in lookup_versions(keys)]


def associated_data(batch_id: str, serial: int) -> bytes:
    """What a PIN ciphertext is bound to: its batch and serial."""
    return b"%s\x00%d" % (batch_id.encode("ascii"), serial)


@dataclass(frozen=True)
class WrappedDataKey:
    wrapped: bytes
    wrap_algorithm: str
    master_version: int


def new_data_key() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def wrap_data_key(keys: KeyProvider, data_key: bytes, batch_id: str, algorithm: str = DEFAULT_KEY_WRAP) -> WrappedDataKey:
    version = keys.current_master_version()
    wrap, _ = KEY_WRAPS[algorithm]
    return WrappedDataKey(wrap(keys.master_key(version), data_key, batch_id.encode("ascii")), algorithm, version)


def unwrap_data_key(keys: KeyProvider, wrapped: WrappedDataKey, batch_id: str) -> bytes:
    _, unwrap = KEY_WRAPS[wrapped.wrap_algorithm]
    try:
        return unwrap(keys.master_key(wrapped.master_version), wrapped.wrapped, batch_id.encode("ascii"))
    except (InvalidTag, InvalidUnwrap):
        raise FailedPrecondition(
            "DATA_KEY_CORRUPT", f"the data key of batch {batch_id} does not unwrap with master key version {wrapped.master_version}",
            f"voucher-batch/{batch_id}",
        ) from None


def rewrap_data_key(keys: KeyProvider, wrapped: WrappedDataKey, batch_id: str, algorithm: str | None = None) -> WrappedDataKey:
    """The same data key under the current master key (key rotation; vouchers are untouched)."""
    data_key = unwrap_data_key(keys, wrapped, batch_id)
    return wrap_data_key(keys, data_key, batch_id, algorithm or wrapped.wrap_algorithm)


def split_sealed(sealed: bytes) -> tuple[bytes, bytes]:
    """A stored ``sealed`` value (nonce followed by the AEAD ciphertext) as ``(nonce, ciphertext)``."""
    return sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]


class PinSealer:
    """Encrypts and decrypts the PINs of one batch under its data key."""

    def __init__(self, cipher: str, data_key: bytes, batch_id: str) -> None:
        if cipher not in PIN_CIPHERS:
            raise FailedPrecondition("UNKNOWN_CIPHER", f"PIN cipher {cipher!r} is not supported", f"voucher-batch/{batch_id}")
        self.cipher = cipher
        self.batch_id = batch_id
        self._aead = PIN_CIPHERS[cipher](data_key)
        self._prefix = batch_id.encode("ascii") + b"\x00"

    def seal(self, serial: int, nonce: bytes, pin: bytes) -> bytes:
        return self._aead.encrypt(nonce, pin, self._prefix + b"%d" % serial)

    def seal_many(self, serials: Iterable[int], nonces: Iterable[bytes], pins: Iterable[bytes]) -> list[bytes]:
        """``nonce + ciphertext`` per PIN: the stored ``sealed`` value (see :func:`split_sealed`)."""
        encrypt, prefix = self._aead.encrypt, self._prefix
        return [nonce + encrypt(nonce, pin, prefix + b"%d" % serial) for serial, nonce, pin in zip(serials, nonces, pins)]

    def open(self, serial: int, nonce: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, self._prefix + b"%d" % serial)
        except InvalidTag:
            raise FailedPrecondition(
                "PIN_CIPHERTEXT_INVALID", f"the stored PIN of serial {serial} does not decrypt (tampered or moved)",
                f"voucher/{serial}",
            ) from None
