"""Batch generation as a pure producer: profile + overrides -> a batch header and chunks of rows.

Nothing here touches storage.  :func:`plan_batch` validates the request and
fixes every batch-level value (ids, serial range, expiry, wrapped data key);
:class:`BatchProducer` then yields rows ``(batch_id, serial, lookup_hash, sealed)``
(``sealed`` = nonce + ciphertext) chunk by chunk, serials ascending and
contiguous within a chunk -- the PINs exist only inside one chunk's
computation.  Lookup hashes are unique within the batch (a repeated PIN is
drawn again); uniqueness against other batches is the store's unique index,
which asks :meth:`BatchProducer.replace` for fresh rows.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator, Sequence

from engine.errors import ErrorList
from engine.tenancy import TENANT_ID
from engine.vouchers.crypto import NONCE_BYTES, CryptoSettings, KeyProvider, LookupHasher, PinSealer, new_data_key, wrap_data_key
from engine.vouchers.model import BatchState, VoucherBatch, VoucherRow
from engine.vouchers.face_value import FaceValueError, check_currency, parse_face_value
from engine.vouchers.pins import RandomBytes, generate_pins
from engine.vouchers.profile import VoucherProfile

# rows per chunk: one insert statement and one progress message each (40 messages for a million);
# large enough that per-statement costs vanish, small enough that two prefetched chunks stay ~10 MB
DEFAULT_CHUNK_SIZE = 25_000
DEALER_ID_MAX = 64

Progress = Callable[[int, int], None]  # (rows produced so far, total)


@dataclass(frozen=True)
class BatchRequest:
    """What GenerateBatch asks for; empty overrides take the profile's values."""

    profile_id: str
    count: int
    face_value: str = ""  # decimal text, e.g. "20.00"
    currency: str = ""
    expires_at: datetime | None = None
    owner: str = ""  # tenant (MVNO) the batch belongs to
    dealer: str = ""


def new_batch_id(randbytes: RandomBytes = os.urandom) -> str:
    return "vb-" + randbytes(8).hex()


def plan_batch(
    profile: VoucherProfile,
    request: BatchRequest,
    *,
    first_serial: int,
    now: datetime,
    keys: KeyProvider,
    crypto: CryptoSettings,
    max_count: int,
    batch_id: str | None = None,
    created_by: str = "",
) -> tuple[VoucherBatch, bytes]:
    """Validate the request against the profile; returns the batch and its clear data key.

    Every bad field is reported at once (``InvalidArgument`` with violations).
    """
    errors = ErrorList()
    if request.count <= 0:
        errors.add("count", "must be at least 1")
    elif request.count > max_count:
        errors.add("count", f"at most {max_count} vouchers per batch (configured maximum)")
    currency = request.currency or profile.currency
    micros = profile.face_value_micros
    try:
        check_currency(currency)
        if request.face_value:
            micros = parse_face_value(request.face_value, currency)
        elif currency != profile.currency:
            # the profile's amount may not fit the other currency's decimals
            micros = parse_face_value(_plain(profile.face_value_micros), currency)
    except FaceValueError as exc:
        errors.add("currency" if exc.code == "currency.unknown" else "face_value", str(exc))
    expires_at = request.expires_at or now + timedelta(days=profile.validity_days)
    if expires_at.tzinfo is None:
        errors.add("expire_time", "must carry a time zone (UTC)")
    elif expires_at <= now:
        errors.add("expire_time", "must be in the future")
    owner = request.owner or profile.owner
    if not TENANT_ID.match(owner):
        errors.add("tenant_id", f"{owner!r} is not a tenant id")
    if len(request.dealer) > DEALER_ID_MAX or (request.dealer and not request.dealer.isprintable()):
        errors.add("dealer", f"at most {DEALER_ID_MAX} printable characters")
    if first_serial < 1:
        errors.add("first_serial", "serial numbers start at 1")
    elif request.count > 0 and first_serial + request.count - 1 > profile.serial.max_serial:
        errors.add("count", f"serials would pass {profile.serial.format(profile.serial.max_serial)}, the last one of this profile's format")
    errors.raise_if_any("cannot generate voucher batch")

    batch_id = batch_id or new_batch_id()
    data_key = new_data_key()
    wrapped = wrap_data_key(keys, data_key, batch_id, crypto.key_wrap)
    batch = VoucherBatch(
        batch_id=batch_id,
        profile_id=profile.profile_id,
        owner=owner,
        dealer=request.dealer,
        currency=currency,
        face_value_micros=micros,
        count=request.count,
        first_serial=first_serial,
        serial=profile.serial,
        pin_length=profile.pin_length,
        created_at=now,
        expires_at=expires_at,
        recharge_extension_days=profile.recharge_extension_days,
        state=BatchState.GENERATED,
        pin_cipher=crypto.pin_cipher,
        key_wrap=wrapped.wrap_algorithm,
        wrapped_data_key=wrapped.wrapped,
        master_key_version=wrapped.master_version,
        lookup_key_version=keys.current_lookup_version(),
        created_by=created_by,
    )
    return batch, data_key


def _plain(micros: int) -> str:
    whole, frac = divmod(micros, 1_000_000)
    return f"{whole}.{frac:06d}"


class BatchProducer:
    """Yields the rows of one planned batch; holds the clear data key only while generating."""

    def __init__(self, batch: VoucherBatch, data_key: bytes, keys: KeyProvider, randbytes: RandomBytes = os.urandom) -> None:
        self.batch = batch
        self._sealer = PinSealer(batch.pin_cipher, data_key, batch.batch_id)
        self._hasher = LookupHasher(keys.lookup_key(batch.lookup_key_version), batch.lookup_key_version)
        self._randbytes = randbytes
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()  # a store may prefetch chunks in a thread while asking for replacements
        self.redrawn = 0  # PINs drawn again because they repeated one of this batch

    def _unique_pins(self, count: int) -> tuple[list[bytes], list[bytes]]:
        """``count`` PINs whose lookup hashes are new to this batch, with those hashes."""
        pins = generate_pins(count, self.batch.pin_length, self._randbytes)
        hashes = self._hasher.hash_many(pins)
        fresh = set(hashes)
        if len(fresh) == count and self._seen.isdisjoint(fresh):
            self._seen |= fresh  # the usual case, checked in C
            return pins, hashes
        # a repeat (about once per 10**15 / n**2 draws): keep the new ones, draw the rest again
        kept_pins: list[bytes] = []
        kept_hashes: list[bytes] = []
        for pin, digest in zip(pins, hashes):
            if digest in self._seen:
                self.redrawn += 1
                continue
            self._seen.add(digest)
            kept_pins.append(pin)
            kept_hashes.append(digest)
        more_pins, more_hashes = self._unique_pins(count - len(kept_pins)) if len(kept_pins) < count else ([], [])
        return kept_pins + more_pins, kept_hashes + more_hashes

    def _rows(self, serials: Sequence[int]) -> list[VoucherRow]:
        with self._lock:
            pins, hashes = self._unique_pins(len(serials))
        size = NONCE_BYTES
        block = self._randbytes(size * len(serials))
        nonces = [block[i:i + size] for i in range(0, len(block), size)]
        batch_id = self.batch.batch_id
        sealed = self._sealer.seal_many(serials, nonces, pins)
        return [(batch_id, serial, digest, box) for serial, digest, box in zip(serials, hashes, sealed)]

    def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE, progress: Progress | None = None) -> Iterator[list[VoucherRow]]:
        first, total = self.batch.first_serial, self.batch.count
        done = 0
        while done < total:
            size = min(chunk_size, total - done)
            rows = self._rows(range(first + done, first + done + size))
            done += size
            yield rows
            if progress is not None:
                progress(done, total)

    def replace(self, serials: Sequence[int]) -> list[VoucherRow]:
        """Fresh rows (new PINs) for serials whose PIN collided with another batch in the store."""
        for serial in serials:
            if not self.batch.first_serial <= serial <= self.batch.last_serial:
                raise ValueError(f"serial {serial} is not in batch {self.batch.batch_id}")
        return self._rows(list(serials))
