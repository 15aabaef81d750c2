"""OpenPGP through the ``gpg`` binary: the adapter of the engine's distribution-file encryption port
(``engine.vouchers.distribution.DistributionSealer``), and the operator's signing key.

Each use runs gpg in a throw-away GNUPGHOME holding only the keys it needs, so
nothing depends on (or leaks into) a user's keyring.  Clear text goes to gpg's
stdin and ciphertext comes back on its stdout, read by a thread into the
caller's sink so gpg never blocks on a full pipe; passphrases travel through a
pipe, never on a command line where ``ps`` would show them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterable

from engine.errors import FailedPrecondition, InvalidArgument
from engine.vouchers.distribution import ExportError, SealReport

GPG_BINARY = shutil.which("gpg") or "/usr/bin/gpg"
READ_BLOCK = 64 * 1024


class GpgSealer:
    """The real ``gpg`` binary in a throw-away GNUPGHOME holding only the two keys.

    ``recipient_public_key`` is the recipient's exported public key (armoured or
    binary); ``operator_secret_key`` the operator's signing key, exported
    without passphrase or opened with ``passphrase``.
    """

    def __init__(self, recipient_public_key: bytes, operator_secret_key: bytes, passphrase: str = "",
                 gpg: str = GPG_BINARY, armor: bool = False) -> None:
        self._recipient = recipient_public_key
        self._operator = operator_secret_key
        self._passphrase = passphrase
        self._gpg = gpg
        self._armor = armor

    def _run(self, home: str, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return _gpg(self._gpg, home, *args, stdin=stdin)

    def _passphrase_fd(self) -> int:
        """A pipe carrying the passphrase: never on gpg's command line, where ``ps`` would show it."""
        read, write = os.pipe()
        os.write(write, self._passphrase.encode("utf-8") + b"\n")
        os.close(write)
        return read

    def _with_passphrase(self, home: str, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        fd = self._passphrase_fd()
        try:
            return subprocess.run([self._gpg, "--homedir", home, "--batch", "--no-tty", "--quiet", "--pinentry-mode", "loopback",
                                   "--passphrase-fd", str(fd), *args], input=stdin, capture_output=True, timeout=60,
                                  check=False, pass_fds=(fd,))
        finally:
            os.close(fd)

    def _prepare(self, home: str) -> SealReport:
        self._run(home, ["--import"], self._recipient)
        listing = self._run(home, ["--with-colons", "--fingerprint", "--list-keys"]).stdout.decode("utf-8", "replace")
        recipient = None
        records = listing.splitlines()
        for i, line in enumerate(records):
            fields = line.split(":")
            # pub:<validity>:...:<capabilities at index 11>; the primary's fpr follows on the next line
            if fields[0] == "pub" and len(fields) > 11 and "E" in fields[11] and fields[1] not in ("r", "e", "d", "i"):
                fpr = next((r.split(":")[9] for r in records[i + 1:] if r.startswith("fpr:")), "")
                if fpr:
                    recipient = fpr
                    break
        if recipient is None:
            raise InvalidArgument.field("recipient_public_key", "not a usable OpenPGP public key (valid, with an encryption subkey)")
        imported = self._with_passphrase(home, ["--import"], self._operator)
        secrets_listing = self._run(home, ["--with-colons", "--fingerprint", "--list-secret-keys"]).stdout.decode("utf-8", "replace")
        signer = ""
        lines = secrets_listing.splitlines()
        for i, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == "sec" and len(fields) > 11 and "S" in fields[11].upper():
                signer = next((r.split(":")[9] for r in lines[i + 1:] if r.startswith("fpr:")), "")
                break
        if imported.returncode not in (0, 2) or not signer:
            raise InvalidArgument.field("operator_secret_key", "not a usable OpenPGP secret signing key")
        return SealReport(recipient, signer)

    def check(self) -> SealReport:
        with tempfile.TemporaryDirectory(prefix="rbgpg-") as home:
            try:
                return self._prepare(home)
            finally:
                _stop_agent(self._gpg, home)

    def seal(self, clear: Iterable[bytes], out: BinaryIO) -> SealReport:
        with tempfile.TemporaryDirectory(prefix="rbgpg-") as home:
            try:
                report = self._prepare(home)
                self._encrypt(home, report, clear, out)
                return report
            finally:
                _stop_agent(self._gpg, home)

    def _encrypt(self, home: str, report: SealReport, clear: Iterable[bytes], out: BinaryIO) -> None:
        fd = self._passphrase_fd()
        args = [self._gpg, "--homedir", home, "--batch", "--no-tty", "--quiet", "--yes", "--trust-model", "always",
                "--pinentry-mode", "loopback", "--passphrase-fd", str(fd),
                "--local-user", report.signer_fingerprint, "--recipient", report.recipient_fingerprint,
                "--sign", "--encrypt", "--output", "-"]
        if self._armor:
            args.insert(-4, "--armor")
        try:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(fd,))
        finally:
            os.close(fd)
        assert proc.stdin and proc.stdout and proc.stderr
        errors: list[bytes] = []
        failures: list[BaseException] = []

        def pump_out() -> None:  # gpg's stdout -> file; a thread so gpg never blocks on a full pipe
            try:
                while block := proc.stdout.read(READ_BLOCK):  # type: ignore[union-attr]
                    out.write(block)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                failures.append(exc)

        def pump_err() -> None:
            errors.append(proc.stderr.read())  # type: ignore[union-attr]

        threads = [threading.Thread(target=pump_out, daemon=True), threading.Thread(target=pump_err, daemon=True)]
        for t in threads:
            t.start()
        try:
            for block in clear:
                proc.stdin.write(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # gpg died; its exit status and stderr say why
        except BaseException:
            proc.kill()
            raise
        finally:
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            code = proc.wait(timeout=600)
            for t in threads:
                t.join(timeout=60)
            proc.stdout.close()
            proc.stderr.close()
        if failures:
            raise ExportError(f"writing the distribution file failed: {failures[0]}")
        if code != 0:
            detail = b"".join(errors).decode("utf-8", "replace").strip().splitlines()
            raise ExportError(f"gpg failed (exit {code}): {detail[-1] if detail else 'no message'}")


def _gpg(gpg: str, home: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([gpg, "--homedir", home, "--batch", "--no-tty", "--quiet", *args], input=stdin, capture_output=True,
                          timeout=120, check=False)


def _stop_agent(gpg: str, home: str) -> None:
    gpgconf = os.path.join(os.path.dirname(gpg), "gpgconf")
    if os.path.exists(gpgconf):
        subprocess.run([gpgconf, "--homedir", home, "--kill", "gpg-agent"], capture_output=True, timeout=30, check=False)


class SigningKeyError(RuntimeError):
    """The operator's signing key could not be made; the message says why (never key material)."""


def create_signing_key(path: Path | str, uid: str, gpg: str = GPG_BINARY) -> str:
    """Make the operator's OpenPGP signing key and write it, armoured and without passphrase, to ``path`` (0600).

    The file is protected like the voucher keyring: readable by the server's user only.  Refuses to
    overwrite an existing file (exports already signed with that key would no longer verify against a
    new one).  Returns the key's fingerprint.
    """
    path = Path(path)
    if not os.path.exists(gpg):
        raise SigningKeyError(f"cannot create {path}: the gpg binary is not installed ({gpg})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rbgpg-") as home:
        try:
            made = _gpg(gpg, home, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid,
                        "future-default", "sign", "never")
            if made.returncode != 0:
                detail = made.stderr.decode("utf-8", "replace").strip().splitlines()
                raise SigningKeyError(f"gpg could not make a signing key: {detail[-1] if detail else made.returncode}")
            listing = _gpg(gpg, home, "--with-colons", "--fingerprint", "--list-secret-keys").stdout.decode()
            fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
            secret = _gpg(gpg, home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys",
                          fingerprint).stdout
        finally:
            _stop_agent(gpg, home)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path}: a signing key file already exists; refusing to overwrite it") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return fingerprint


class DistributionSealing:
    """Sealers of distribution files, each signed with the operator's key as its file holds it at the export (a key
    replaced on the host is used from the next export on); the composition root builds one."""

    def __init__(self, signing_key_file: Path, gpg: str = GPG_BINARY) -> None:
        self.signing_key_file = signing_key_file
        self._gpg = gpg

    def sealer(self, recipient_public_key: bytes, armor: bool = False) -> GpgSealer:
        try:
            operator = self.signing_key_file.read_bytes()
        except OSError:
            raise FailedPrecondition("SIGNING_KEY_MISSING", f"the operator's OpenPGP signing key is missing ({self.signing_key_file}); "
                                     "`rulebill bootstrap` creates it, or set voucher_signing_key_file", "voucher-signing-key") from None
        return GpgSealer(recipient_public_key, operator, gpg=self._gpg, armor=armor)
