"""The pure batch producer: validation of requests, rows, uniqueness, collisions."""

from __future__ import annotations

import hmac
import itertools
import os
from datetime import timedelta

import pytest

from engine.errors import InvalidArgument
from engine.vouchers.crypto import LOOKUP_HASH_BYTES, NONCE_BYTES, CryptoSettings, PinSealer, WrappedDataKey, split_sealed, unwrap_data_key
from engine.vouchers.generation import BatchProducer, BatchRequest, plan_batch
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.model import BATCH_ID, ROW_COLUMNS, BatchState
from engine.vouchers.pins import luhn_valid
from engine.vouchers.profile import ProfileCatalogue

from .factories import T0


def _plan(profiles: ProfileCatalogue, keys: StaticKeyProvider, request: BatchRequest, first_serial: int = 1,
          crypto: CryptoSettings | None = None, max_count: int = 1000):  # type: ignore[no-untyped-def]
    profile = profiles.profiles[request.profile_id]
    return plan_batch(profile, request, first_serial=first_serial, now=T0, keys=keys, crypto=crypto or CryptoSettings(),
                      max_count=max_count)


def test_batch_takes_profile_values(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    batch, data_key = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 100), first_serial=501)
    assert BATCH_ID.match(batch.batch_id)
    assert (batch.currency, batch.face_value_micros, batch.owner, batch.count) == ("EUR", 10_000_000, "mno", 100)
    assert (batch.first_serial, batch.last_serial) == (501, 600)
    assert batch.expires_at == T0 + timedelta(days=365)
    assert batch.state is BatchState.GENERATED
    assert batch.pin_cipher == "aes-256-gcm" and batch.master_key_version == 1 and batch.lookup_key_version == 1
    assert batch.wrapped_data_key is not None and data_key not in batch.wrapped_data_key
    wrapped = WrappedDataKey(batch.wrapped_data_key, batch.key_wrap, batch.master_key_version)
    assert unwrap_data_key(keys, wrapped, batch.batch_id) == data_key


def test_overrides(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    expiry = T0 + timedelta(days=30)
    batch, _ = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 5, face_value="12.50", currency="USD", expires_at=expiry,
                                                  owner="mvno-alpha", dealer="dealer-17"))
    assert (batch.currency, batch.face_value_micros, batch.expires_at, batch.owner, batch.dealer) == (
        "USD", 12_500_000, expiry, "mvno-alpha", "dealer-17")


def test_currency_override_keeps_profile_value_when_it_fits(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    batch, _ = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 5, currency="GBP"))
    assert (batch.currency, batch.face_value_micros) == ("GBP", 10_000_000)


def test_every_bad_field_is_reported_at_once(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    request = BatchRequest("vp-mno-eur-10", 0, face_value="1.234", expires_at=T0 - timedelta(days=1), owner="Not A Tenant")
    with pytest.raises(InvalidArgument) as err:
        _plan(profiles, keys, request)
    assert sorted(v.field for v in err.value.violations) == ["count", "expire_time", "face_value", "tenant_id"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (BatchRequest("vp-mno-eur-10", 1001), "count"),
        (BatchRequest("vp-mno-eur-10", -5), "count"),
        (BatchRequest("vp-mno-eur-10", 1, currency="XXY"), "currency"),
        (BatchRequest("vp-mno-eur-10", 1, face_value="0"), "face_value"),
        (BatchRequest("vp-mno-eur-10", 1, face_value="-1.00"), "face_value"),
        (BatchRequest("vp-mno-eur-10", 1, currency="JPY"), "face_value"),  # 10.00 fits; check a fraction instead below
        (BatchRequest("vp-mno-eur-10", 1, expires_at=T0.replace(tzinfo=None)), "expire_time"),
        (BatchRequest("vp-mno-eur-10", 1, dealer="x" * 65), "dealer"),
    ],
)
def test_bad_requests(profiles: ProfileCatalogue, keys: StaticKeyProvider, request_: BatchRequest, field: str) -> None:
    if request_.currency == "JPY":
        request_ = BatchRequest("vp-mno-eur-10", 1, currency="JPY", face_value="10.50")
    with pytest.raises(InvalidArgument) as err:
        _plan(profiles, keys, request_)
    assert [v.field for v in err.value.violations] == [field]


def test_serials_must_fit_the_profile_format(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    with pytest.raises(InvalidArgument) as err:
        _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 10), first_serial=9_999_999_995)
    assert [v.field for v in err.value.violations] == ["count"]


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "chacha20-poly1305"])
def test_rows_are_complete_unique_and_decrypt_to_valid_pins(profiles: ProfileCatalogue, keys: StaticKeyProvider, cipher: str) -> None:
    batch, data_key = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 1000), first_serial=10,
                            crypto=CryptoSettings(pin_cipher=cipher, key_wrap="aes-256-kw"))
    assert batch.pin_cipher == cipher and batch.key_wrap == "aes-256-kw"
    producer = BatchProducer(batch, data_key, keys)
    progress: list[tuple[int, int]] = []
    chunks = list(producer.chunks(300, lambda done, total: progress.append((done, total))))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert progress == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    rows = [r for c in chunks for r in c]
    assert ROW_COLUMNS == ("batch_id", "serial", "lookup_hash", "sealed")
    assert [r[1] for r in rows] == list(range(10, 1010))
    assert {r[0] for r in rows} == {batch.batch_id}
    assert len({r[2] for r in rows}) == 1000 and len({r[3] for r in rows}) == 1000
    sealer = PinSealer(cipher, data_key, batch.batch_id)
    lookup_key = keys.lookup_key(1)
    assert {len(r[2]) for r in rows} == {LOOKUP_HASH_BYTES}
    assert {len(r[3]) for r in rows} == {NONCE_BYTES + 16 + 16}  # nonce + 16-digit PIN + GCM tag: fixed width per batch
    for _, serial, digest, sealed in rows[:200]:
        nonce, ciphertext = split_sealed(sealed)
        pin = sealer.open(serial, nonce, ciphertext)
        assert len(pin) == 16 and luhn_valid(pin)
        assert hmac.digest(lookup_key, pin, "sha256")[:LOOKUP_HASH_BYTES] == digest


def test_repeated_pins_within_a_batch_are_drawn_again(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    batch, data_key = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 50))
    # a rigged random source: the same digits over and over for the first draws, then real randomness
    stuck = itertools.chain([bytes(range(10)) * 200] * 3)

    def source(n: int) -> bytes:
        block = next(stuck, None)
        return (block * (n // len(block) + 1))[:n] if block else os.urandom(n)

    producer = BatchProducer(batch, data_key, keys, randbytes=source)
    rows = [r for c in producer.chunks(50) for r in c]
    assert len(rows) == 50 and len({r[2] for r in rows}) == 50
    assert producer.redrawn > 0


def test_replace_gives_fresh_rows_for_the_same_serials(profiles: ProfileCatalogue, keys: StaticKeyProvider) -> None:
    batch, data_key = _plan(profiles, keys, BatchRequest("vp-mno-eur-10", 10), first_serial=100)
    producer = BatchProducer(batch, data_key, keys)
    rows = [r for c in producer.chunks() for r in c]
    fresh = producer.replace([103, 107])
    assert [r[1] for r in fresh] == [103, 107]
    assert not {r[2] for r in fresh} & {r[2] for r in rows}
    with pytest.raises(ValueError):
        producer.replace([99])
