"""Distribution files with the real gpg: the recipient decrypts and verifies with standard gpg."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from engine.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from engine.vouchers.distribution import GpgSealer
from engine.vouchers.ports import VoucherSelection

from .factories import ADMIN, REVEALER, World
from .gpgkeys import GPG, KeyHome, gpg, make_key, stop_agent

pytestmark = pytest.mark.skipif(not os.path.exists(GPG), reason="gpg binary not installed")


@pytest.fixture(scope="module")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KeyHome, KeyHome]]:
    base = Path(tmp_path_factory.mktemp("gpg", numbered=True))
    recipient = make_key(base / "r", "Print Shop <print@example.test>")
    operator = make_key(base / "o", "Rulebill Operator <voms@example.test>")
    # the recipient knows the operator's public key to verify the signature
    assert gpg(recipient.home, "--import", stdin=operator.public_key).returncode == 0
    yield recipient, operator
    stop_agent(recipient.home)
    stop_agent(operator.home)
    shutil.rmtree(base, ignore_errors=True)


def _decrypt(recipient: KeyHome, path: Path) -> tuple[str, str]:
    result = gpg(recipient.home, "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "2", "--decrypt", str(path))
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode(), result.stderr.decode()


def test_export_decrypts_and_verifies_with_standard_gpg(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, operator = gpg_keys
    batch = world.batch("vp-mno-eur-10", count=25)
    pins = world.pins(batch)
    sealer = GpgSealer(recipient.public_key, operator.secret_key)
    target = tmp_path / "batch.csv.gpg"
    receipt = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), sealer, target, request_id="exp-1")
    data = target.read_bytes()
    assert receipt.sha256 == hashlib.sha256(data).hexdigest() and receipt.size == len(data)
    assert receipt.recipient_fingerprint == recipient.fingerprint and receipt.signer_fingerprint == operator.fingerprint
    assert not any(pin.encode() in data for pin in pins.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv.gpg"]  # no clear text or temp file left

    text, status = _decrypt(recipient, target)
    assert "[GNUPG:] GOODSIG" in status and f"VALIDSIG {operator.fingerprint}" in status
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
    assert len(rows) == 25
    assert rows[0] == ["MN0000000001", pins[1], "10.00", "EUR", batch.expires_at.isoformat()]
    assert {r[1] for r in rows} == set(pins.values())

    entry = world.store.state.audit[-1]
    assert entry.action == "voucher.export" and entry.request_id == "exp-1"
    assert entry.after["sha256"] == receipt.sha256 and entry.after["recipient_fingerprint"] == recipient.fingerprint


def test_serial_range_across_currencies(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, operator = gpg_keys
    eur = world.batch("vp-mno-eur-10", count=3)
    usd = world.batch("vp-mno-usd-20", count=3)
    target = tmp_path / "range.gpg"
    receipt = world.distributor.export(REVEALER, VoucherSelection(first_serial=2, last_serial=5),
                                       GpgSealer(recipient.public_key, operator.secret_key, armor=True), target)
    assert receipt.count == 4 and receipt.totals == {"EUR": 20_000_000, "USD": 40_000_000}
    assert target.read_bytes().startswith(b"-----BEGIN PGP MESSAGE-----")
    text, _ = _decrypt(recipient, target)
    assert f"# batch_id: {','.join(sorted([eur.batch_id, usd.batch_id]))}" in text
    assert "# face_value_total: EUR 20.00\n# face_value_total: USD 40.00\n" in text
    assert [line.split(",")[0] for line in text.splitlines()[7:]] == ["MN0000000002", "MN0000000003", "MU0000000004", "MU0000000005"]


@pytest.mark.parametrize("bad_key", [b"", b"not a key at all", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"])
def test_invalid_recipient_key_is_a_clear_error_and_writes_nothing(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path,
                                                                    bad_key: bytes) -> None:
    _, operator = gpg_keys
    batch = world.batch(count=2)
    audit_before = len(world.store.state.audit)
    with pytest.raises(InvalidArgument) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), GpgSealer(bad_key, operator.secret_key),
                                 tmp_path / "x.gpg")
    assert [v.field for v in err.value.violations] == ["recipient_public_key"]
    assert list(tmp_path.iterdir()) == [] and len(world.store.state.audit) == audit_before


def test_signing_key_must_be_a_secret_key(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, operator = gpg_keys
    batch = world.batch(count=1)
    with pytest.raises(InvalidArgument) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), GpgSealer(recipient.public_key, operator.public_key),
                                 tmp_path / "x.gpg")
    assert [v.field for v in err.value.violations] == ["operator_secret_key"]
    assert list(tmp_path.iterdir()) == []


def test_export_needs_reveal_privilege_and_a_live_data_key(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, operator = gpg_keys
    batch = world.batch(count=2)
    sealer = GpgSealer(recipient.public_key, operator.secret_key)
    with pytest.raises(PermissionDenied):
        world.distributor.export(ADMIN, VoucherSelection(batch_id=batch.batch_id), sealer, tmp_path / "a.gpg")
    world.desk.destroy_data_key(ADMIN, batch.batch_id)
    with pytest.raises(FailedPrecondition) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), sealer, tmp_path / "b.gpg")
    assert err.value.reason == "DATA_KEY_DESTROYED"
    assert list(tmp_path.iterdir()) == []


def test_existing_destination_is_not_overwritten(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, operator = gpg_keys
    batch = world.batch(count=1)
    target = tmp_path / "taken.gpg"
    target.write_bytes(b"keep me")
    with pytest.raises(InvalidArgument):
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), GpgSealer(recipient.public_key, operator.secret_key),
                                 target)
    assert target.read_bytes() == b"keep me"


def test_large_export_streams_through_gpg(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    """More clear text than a pipe buffer holds: proves the reader thread keeps gpg flowing."""
    recipient, operator = gpg_keys
    batch = world.batch(count=3000)
    target = tmp_path / "big.gpg"
    receipt = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                       GpgSealer(recipient.public_key, operator.secret_key), target)
    assert receipt.count == 3000
    text, _ = _decrypt(recipient, target)
    assert len(text.splitlines()) == 3006


@pytest.mark.parametrize("lifecycle", ["rules"], indirect=True)  # slow (gpg's bad-passphrase delay): once is enough
def test_passphrase_protected_operator_key(world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    """The passphrase reaches gpg through a pipe (never argv); a wrong one is a clear error, nothing written."""
    recipient, _ = gpg_keys
    home = tmp_path / "protected"
    home.mkdir(mode=0o700)
    made = gpg(home, "--passphrase", "s3cret-phrase", "--pinentry-mode", "loopback", "--quick-gen-key", "Signer <s@example.test>",
               "future-default", "default", "never")
    assert made.returncode == 0, made.stderr
    secret = gpg(home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "s3cret-phrase", "--export-secret-keys").stdout
    stop_agent(home)
    batch = world.batch(count=2)
    receipt = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                       GpgSealer(recipient.public_key, secret, passphrase="s3cret-phrase"), tmp_path / "ok.gpg")
    assert receipt.count == 2 and (tmp_path / "ok.gpg").stat().st_size == receipt.size
    with pytest.raises(FailedPrecondition) as err:
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                 GpgSealer(recipient.public_key, secret, passphrase="wrong"), tmp_path / "bad.gpg")
    assert err.value.reason == "EXPORT_FAILED" and "s3cret" not in str(err.value)
    assert not (tmp_path / "bad.gpg").exists()
