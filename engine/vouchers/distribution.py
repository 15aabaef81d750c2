"""Distribution files for printers and distributors, OpenPGP-encrypted and signed.

The clear text (header + one row per voucher with its PIN) is produced chunk by
chunk and written straight into ``gpg``'s stdin; a reader thread takes the
ciphertext from gpg's stdout into a temporary file beside the destination while
hashing it.  Clear text never touches disk.  The file appears under its final
name only when gpg succeeded (rename), so a failed export leaves nothing behind.

File format (UTF-8 CSV after ``#`` header lines)::

    # rulebill voucher distribution file v1
    # batch_id: vb-0123456789abcdef
    # created_at: 2026-11-27T12:00:00+00:00
    # count: 1000
    # face_value_total: EUR 10000.00
    serial,pin,denomination,currency,expiry
    MN0000000001,1234567890123452,10.00,EUR,2027-11-27T12:00:00+00:00
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Protocol

from engine import audit
from engine.cancellation import checkpoint
from engine.clock import Clock
from engine.errors import FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.vouchers.crypto import KeyProvider, PinSealer, WrappedDataKey, unwrap_data_key
from engine.vouchers.model import Voucher, VoucherBatch
from engine.vouchers.money import format_face_value
from engine.vouchers.ports import VoucherRepository, VoucherSelection, VoucherUnitOfWorkFactory
from engine.vouchers.scope import describe, scoped

log = logging.getLogger("rulebill.vouchers.distribution")

FORMAT_LINE = b"# rulebill voucher distribution file v1\n"
COLUMNS_LINE = b"serial,pin,denomination,currency,expiry\n"
GPG_BINARY = "/usr/bin/gpg"
READ_BLOCK = 64 * 1024


class ExportError(FailedPrecondition):
    def __init__(self, message: str, subject: str = "") -> None:
        super().__init__("EXPORT_FAILED", message, subject)


@dataclass(frozen=True)
class SealReport:
    recipient_fingerprint: str
    signer_fingerprint: str


class DistributionSealer(Protocol):
    """Encrypts (and signs) a stream of clear-text blocks into ``out``."""

    def check(self) -> SealReport:
        """Validate the keys before anything is written; raise InvalidArgument when unusable."""

    def seal(self, clear: Iterable[bytes], out: BinaryIO) -> SealReport: ...


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
        return subprocess.run([self._gpg, "--homedir", home, "--batch", "--no-tty", "--quiet", *args], input=stdin,
                              capture_output=True, timeout=60, check=False)

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
                self._stop_agent(home)

    def _stop_agent(self, home: str) -> None:
        gpgconf = os.path.join(os.path.dirname(self._gpg), "gpgconf")
        if os.path.exists(gpgconf):
            subprocess.run([gpgconf, "--homedir", home, "--kill", "gpg-agent"], capture_output=True, timeout=30, check=False)

    def seal(self, clear: Iterable[bytes], out: BinaryIO) -> SealReport:
        with tempfile.TemporaryDirectory(prefix="rbgpg-") as home:
            try:
                report = self._prepare(home)
                self._encrypt(home, report, clear, out)
                return report
            finally:
                self._stop_agent(home)

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


class _HashingWriter:
    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> int:
        self.sha256.update(block)
        self.size += len(block)
        return self._fh.write(block)


@dataclass(frozen=True)
class ExportReceipt:
    path: Path
    sha256: str
    size: int
    count: int
    totals: dict[str, int]  # currency -> face value micros
    batch_ids: tuple[str, ...]
    created_at: datetime
    recipient_fingerprint: str
    signer_fingerprint: str


def batch_sealer(keys: KeyProvider, batch: VoucherBatch) -> PinSealer:
    if batch.wrapped_data_key is None:
        raise FailedPrecondition("DATA_KEY_DESTROYED", f"the PINs of batch {batch.batch_id} were destroyed and cannot be exported",
                                 f"voucher-batch/{batch.batch_id}")
    wrapped = WrappedDataKey(batch.wrapped_data_key, batch.key_wrap, batch.master_key_version)
    return PinSealer(batch.pin_cipher, unwrap_data_key(keys, wrapped, batch.batch_id), batch.batch_id)


class Distributor:
    """Use case: export a batch or serial range as a sealed distribution file."""

    def __init__(self, uow: VoucherUnitOfWorkFactory, keys: KeyProvider, clock: Clock, chunk_size: int = 5000) -> None:
        self._uow = uow
        self._keys = keys
        self._clock = clock
        self._chunk = chunk_size

    def export(self, principal: Principal, selection: VoucherSelection, sealer: DistributionSealer, destination: Path | str,
               request_id: str = "") -> ExportReceipt:
        principal.require(Permission.VOUCHER_REVEAL_PIN)
        destination = Path(destination)
        if destination.exists():
            raise InvalidArgument.field("destination", f"{destination} already exists; choose a new file name")
        if not destination.parent.is_dir():
            raise InvalidArgument.field("destination", f"folder {destination.parent} does not exist")
        selection = scoped(principal, selection)
        sealer.check()  # bad keys: a clear error before anything is written
        now = self._clock.now()
        with self._uow() as uow:
            repo = uow.vouchers
            batches, count, totals = self._summarise(repo, selection)
            if count == 0:
                raise NotFound("voucher", describe(selection))
            header = self._header(batches, now, count, totals)
            fd, tmp_name = tempfile.mkstemp(prefix=".export-", dir=destination.parent)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as fh:
                    writer = _HashingWriter(fh)
                    report = sealer.seal(self._clear_text(repo, selection, batches, header), writer)  # type: ignore[arg-type]
                    fh.flush()
                    os.fsync(fh.fileno())
                os.link(tmp, destination)  # fails rather than overwrite a file created meanwhile
            finally:
                tmp.unlink(missing_ok=True)
            receipt = ExportReceipt(destination, writer.sha256.hexdigest(), writer.size, count, totals,
                                    tuple(sorted(batches)), now, report.recipient_fingerprint, report.signer_fingerprint)
            uow.audit.append(audit.entry(principal, now, "voucher.export", "voucher_selection", describe(selection), {}, {
                "file": destination.name, "sha256": receipt.sha256, "size": receipt.size, "count": count,
                "recipient_fingerprint": receipt.recipient_fingerprint, "signer_fingerprint": receipt.signer_fingerprint,
                "batches": list(receipt.batch_ids)}, request_id=request_id))
            uow.commit()
        log.info("exported %d vouchers (%s) to %s, sha256 %s, recipient %s", count, describe(selection), destination.name,
                 receipt.sha256, receipt.recipient_fingerprint)
        return receipt

    def _summarise(self, repo: VoucherRepository, selection: VoucherSelection) -> tuple[dict[str, VoucherBatch], int, dict[str, int]]:
        batches: dict[str, VoucherBatch] = {}
        totals: dict[str, int] = {}
        count = 0
        for chunk in repo.stream_vouchers(selection, self._chunk):
            for v in chunk:
                if v.batch_id not in batches:
                    batch = repo.get_batch(v.batch_id)
                    if batch is None:
                        raise NotFound("voucher batch", v.batch_id)
                    batch_sealer(self._keys, batch)  # destroyed keys fail here, before the file exists
                    batches[v.batch_id] = batch
                totals[v.currency] = totals.get(v.currency, 0) + v.face_value_micros
                count += 1
        return batches, count, totals

    @staticmethod
    def _header(batches: dict[str, VoucherBatch], now: datetime, count: int, totals: dict[str, int]) -> bytes:
        lines = [FORMAT_LINE.decode(), f"# batch_id: {','.join(sorted(batches))}\n", f"# created_at: {now.isoformat()}\n",
                 f"# count: {count}\n"]
        lines += [f"# face_value_total: {cur} {format_face_value(micros, cur)}\n" for cur, micros in sorted(totals.items())]
        return "".join(lines).encode("utf-8") + COLUMNS_LINE

    def _clear_text(self, repo: VoucherRepository, selection: VoucherSelection, batches: dict[str, VoucherBatch],
                    header: bytes) -> Iterator[bytes]:
        yield header
        sealers = {batch_id: batch_sealer(self._keys, b) for batch_id, b in batches.items()}
        for chunk in repo.stream_vouchers(selection, self._chunk):
            checkpoint()   # a caller gone away stops the export (the sealer is killed, the file removed)
            yield "".join(self._row(v, batches[v.batch_id], sealers[v.batch_id]) for v in chunk).encode("utf-8")

    @staticmethod
    def _row(v: Voucher, batch: VoucherBatch, sealer: PinSealer) -> str:
        pin = sealer.open(v.serial, v.nonce, v.ciphertext).decode("ascii")
        return f"{batch.serial.format(v.serial)},{pin},{format_face_value(v.face_value_micros, v.currency)},{v.currency},{v.expires_at.isoformat()}\n"
