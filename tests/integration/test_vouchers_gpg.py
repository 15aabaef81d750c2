"""The OpenPGP adapter of the distribution-file encryption port, with the real gpg binary:
the recipient decrypts and verifies with standard gpg; bad keys and passphrases are clear errors;
bootstrap's signing key is made here too."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
from pathlib import Path
from typing import Iterator

import pytest

from engine.clock import FixedClock
from engine.errors import FailedPrecondition, InvalidArgument
from engine.vouchers.keyring import StaticKeyProvider
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.profile import load_profiles
from engine.vouchers.rules import load_voucher_rules
from engine.vouchers.settings import VoucherSettings
from servers.adapters.gpg import DistributionSealing, GpgSealer, SigningKeyError, create_signing_key
from tests.unit.vouchers.factories import REPO, REVEALER, T0, World, build_world
from tests.unit.vouchers.fakes import FakeVoucherStore, RecordingLifecycle
from tests.unit.vouchers.gpgkeys import GPG, KeyHome, gpg, make_key, stop_agent

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists(GPG), reason="gpg binary not installed")]


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


@pytest.fixture
def world() -> World:
    rules = load_voucher_rules(REPO / "rules")
    store = FakeVoucherStore()
    return build_world(store, load_profiles([REPO / "plans" / "vouchers"], root=REPO), StaticKeyProvider.random(), FixedClock(T0),
                       RecordingLifecycle(rules.lifecycle), VoucherSettings(chunk_size=500), rules.lockout)


def _decrypt(recipient: KeyHome, data: bytes) -> tuple[str, str]:
    result = gpg(recipient.home, "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "2", "--decrypt", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode(), result.stderr.decode()


def test_export_decrypts_and_verifies_with_standard_gpg(world: World, gpg_keys: tuple[KeyHome, KeyHome]) -> None:
    recipient, operator = gpg_keys
    batch = world.batch("vp-mno-eur-10", count=25)
    pins = world.pins(batch)
    out = io.BytesIO()
    receipt = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                       GpgSealer(recipient.public_key, operator.secret_key), out)
    data = out.getvalue()
    assert receipt.sha256 == hashlib.sha256(data).hexdigest() and receipt.size == len(data)
    assert receipt.recipient_fingerprint == recipient.fingerprint and receipt.signer_fingerprint == operator.fingerprint
    assert not any(pin.encode() in data for pin in pins.values())
    text, status = _decrypt(recipient, data)
    assert "[GNUPG:] GOODSIG" in status and f"VALIDSIG {operator.fingerprint}" in status
    assert text.splitlines()[3:5] == ["# count: 25", "# face_value_total: EUR 250.00"]
    assert {line.split(",")[1] for line in text.splitlines()[6:]} == set(pins.values())


def test_armoured_output(world: World, gpg_keys: tuple[KeyHome, KeyHome]) -> None:
    recipient, operator = gpg_keys
    batch = world.batch(count=3)
    out = io.BytesIO()
    world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                             GpgSealer(recipient.public_key, operator.secret_key, armor=True), out)
    assert out.getvalue().startswith(b"-----BEGIN PGP MESSAGE-----")
    assert "# count: 3" in _decrypt(recipient, out.getvalue())[0]


@pytest.mark.parametrize("bad_key", [b"", b"not a key at all", b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"])
def test_invalid_recipient_key_is_a_clear_error(gpg_keys: tuple[KeyHome, KeyHome], bad_key: bytes) -> None:
    _, operator = gpg_keys
    with pytest.raises(InvalidArgument) as err:
        GpgSealer(bad_key, operator.secret_key).check()
    assert [v.field for v in err.value.violations] == ["recipient_public_key"]


def test_signing_key_must_be_a_secret_key(gpg_keys: tuple[KeyHome, KeyHome]) -> None:
    recipient, operator = gpg_keys
    with pytest.raises(InvalidArgument) as err:
        GpgSealer(recipient.public_key, operator.public_key).check()
    assert [v.field for v in err.value.violations] == ["operator_secret_key"]


def test_large_stream_flows_through_gpg(gpg_keys: tuple[KeyHome, KeyHome]) -> None:
    """More clear text than a pipe buffer holds: the reader thread keeps gpg flowing."""
    recipient, operator = gpg_keys
    clear = [b"%06d,%s\n" % (i, b"x" * 60) for i in range(20_000)]
    out = io.BytesIO()
    GpgSealer(recipient.public_key, operator.secret_key).seal(iter(clear), out)
    assert _decrypt(recipient, out.getvalue())[0].encode() == b"".join(clear)


def test_passphrase_protected_operator_key(gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    """The passphrase reaches gpg through a pipe (never argv); a wrong one is a clear error."""
    recipient, _ = gpg_keys
    home = tmp_path / "protected"
    home.mkdir(mode=0o700)
    made = gpg(home, "--passphrase", "s3cret-phrase", "--pinentry-mode", "loopback", "--quick-gen-key", "Signer <s@example.test>",
               "future-default", "default", "never")
    assert made.returncode == 0, made.stderr
    secret = gpg(home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "s3cret-phrase", "--export-secret-keys").stdout
    public = gpg(home, "--armor", "--export").stdout
    stop_agent(home)
    assert gpg(recipient.home, "--import", stdin=public).returncode == 0  # so the recipient can verify this signer
    out = io.BytesIO()
    GpgSealer(recipient.public_key, secret, passphrase="s3cret-phrase").seal(iter([b"hello\n"]), out)
    assert _decrypt(recipient, out.getvalue())[0] == "hello\n"
    with pytest.raises(FailedPrecondition) as err:
        GpgSealer(recipient.public_key, secret, passphrase="wrong").seal(iter([b"hello\n"]), io.BytesIO())
    assert err.value.reason == "EXPORT_FAILED" and "s3cret" not in str(err.value)


def test_bootstraps_signing_key_is_private_signs_and_is_never_overwritten(gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    recipient, _ = gpg_keys
    path = tmp_path / "var" / "voucher-signing-key.asc"
    fingerprint = create_signing_key(path, "Test Operator <voms@example.test>")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(fingerprint) == 40
    report = GpgSealer(recipient.public_key, path.read_bytes()).check()
    assert report.signer_fingerprint == fingerprint
    before = path.read_bytes()
    with pytest.raises(SigningKeyError):
        create_signing_key(path, "Another <x@example.test>")
    assert path.read_bytes() == before


def test_distribution_sealing_signs_with_the_key_its_file_holds_at_each_export(
        world: World, gpg_keys: tuple[KeyHome, KeyHome], tmp_path: Path) -> None:
    """The composition root's sealing reads the operator's key file at each export: missing, a clear
    FAILED_PRECONDITION naming it; replaced on the host, the next export is signed with the new key."""
    recipient, operator = gpg_keys
    key_file = tmp_path / "voucher-signing-key.asc"
    sealing = DistributionSealing(key_file)
    with pytest.raises(FailedPrecondition) as missing:
        sealing.sealer(recipient.public_key)
    assert missing.value.reason == "SIGNING_KEY_MISSING" and str(key_file) in str(missing.value)
    batch = world.batch("vp-mno-eur-10", count=3)
    key_file.write_bytes(operator.secret_key)
    receipt = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                       sealing.sealer(recipient.public_key, armor=True), io.BytesIO())
    assert receipt.signer_fingerprint == operator.fingerprint
    key_file.write_bytes(recipient.secret_key)   # another key put in its place
    again = world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id),
                                     sealing.sealer(recipient.public_key), io.BytesIO())
    assert again.signer_fingerprint == recipient.fingerprint
