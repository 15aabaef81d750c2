"""Distribution files for printers and distributors, encrypted to the recipient and signed by the operator.

The engine owns the file's content and the port that seals it
(:class:`DistributionSealer`); the OpenPGP adapter (``servers/adapters/gpg.py``)
runs ``gpg``.  The clear text (header + one row per voucher with its PIN) is
produced chunk by chunk and handed to the sealer, which writes only ciphertext
to the caller's sink; the sink is hashed on the way (the SHA-256 goes into the
receipt and the audit log).  Clear text never touches disk.

Which vouchers may go into a file is a lifecycle rule: the ``export`` event of
``rules/lifecycle/voucher.yaml`` (shipped: generated or active, unexpired).  The
others of the selection are left out, counted by state with the rule's reason,
and reported in the receipt -- never silently, never in the face-value total.

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
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable, Iterable, Iterator, Protocol

from engine import audit
from engine.cancellation import checkpoint
from engine.clock import Clock
from engine.errors import FailedPrecondition, NotFound
from engine.eventrules import Lifecycle
from engine.identity import Permission, Principal
from engine.vouchers.crypto import KeyProvider, PinSealer, WrappedDataKey, unwrap_data_key
from engine.vouchers.face_value import format_face_value
from engine.vouchers.model import Voucher, VoucherBatch, VoucherState
from engine.vouchers.ports import VoucherRepository, VoucherSelection, VoucherUnitOfWorkFactory
from engine.vouchers.scope import describe, scoped
from engine.vouchers.transitions import RefusedGroup, decide_voucher

log = logging.getLogger("rulebill.vouchers.distribution")

FORMAT_LINE = b"# rulebill voucher distribution file v1\n"
COLUMNS_LINE = b"serial,pin,denomination,currency,expiry\n"
EXPORT_EVENT = "export"


class ExportError(FailedPrecondition):
    def __init__(self, message: str, subject: str = "") -> None:
        super().__init__("EXPORT_FAILED", message, subject)


@dataclass(frozen=True)
class SealReport:
    recipient_fingerprint: str
    signer_fingerprint: str


class DistributionSealer(Protocol):
    """The encryption port: encrypts to the recipient and signs a stream of clear-text blocks into ``out``.

    Errors: ``InvalidArgument`` for unusable keys (from :meth:`check`, before anything is
    written), :class:`ExportError` when sealing fails.
    """

    def check(self) -> SealReport:
        """Validate the keys before anything is written."""

    def seal(self, clear: Iterable[bytes], out: BinaryIO) -> SealReport: ...


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
    sha256: str
    size: int
    count: int
    totals: dict[str, int]  # currency -> face value micros of the exported vouchers
    batch_ids: tuple[str, ...]
    created_at: datetime
    recipient_fingerprint: str
    signer_fingerprint: str
    left_out: tuple[RefusedGroup, ...] = ()  # selected, but the lifecycle does not allow them in a file


def batch_sealer(keys: KeyProvider, batch: VoucherBatch) -> PinSealer:
    if batch.wrapped_data_key is None:
        raise FailedPrecondition("DATA_KEY_DESTROYED", f"the PINs of batch {batch.batch_id} were destroyed and cannot be exported",
                                 f"voucher-batch/{batch.batch_id}")
    wrapped = WrappedDataKey(batch.wrapped_data_key, batch.key_wrap, batch.master_key_version)
    return PinSealer(batch.pin_cipher, unwrap_data_key(keys, wrapped, batch.batch_id), batch.batch_id)


@dataclass
class _Plan:
    """What goes into the file: the allowed (batch, expired, state) groups, their batches, count and totals."""

    # a group: (batch, expired, voucher state, the batch state the voucher sees: VoucherBatch.state_for its owner)
    allowed: set[tuple[str, bool, VoucherState, str]] = field(default_factory=set)
    batches: dict[str, VoucherBatch] = field(default_factory=dict)
    count: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    left_out: dict[tuple[VoucherState, str], int] = field(default_factory=dict)
    # per owner (each owner's audit entry tells only of its own vouchers): count, batches, left out by state
    owners: dict[str, tuple[int, set[str], dict[str, int]]] = field(default_factory=dict)

    def share(self, owner: str) -> tuple[int, set[str], dict[str, int]]:
        return self.owners.setdefault(owner, (0, set(), {}))


class Distributor:
    """Use case: export a batch or serial range as a sealed distribution file."""

    def __init__(self, uow: VoucherUnitOfWorkFactory, keys: KeyProvider, lifecycle: Lifecycle, clock: Clock,
                 chunk_size: int = 5000, sealers: Callable[[bytes, bool], DistributionSealer] | None = None) -> None:
        self._sealers = sealers   # (recipient's public key, armour) -> the sealer signing with the operator's key
        self._uow = uow
        self._keys = keys
        self._lifecycle = lifecycle
        self._clock = clock
        self._chunk = chunk_size

    def export_to(self, principal: Principal, selection: VoucherSelection, recipient_public_key: bytes, armor: bool,
                  out: BinaryIO, request_id: str = "") -> ExportReceipt:
        """:meth:`export` sealed for ``recipient_public_key`` by the sealer the distributor was built with."""
        principal.require(Permission.VOUCHER_REVEAL_PIN)
        if self._sealers is None:
            raise FailedPrecondition("NO_SEALER", "this distributor was built without a sealer for distribution files")
        return self.export(principal, selection, self._sealers(recipient_public_key, armor), out, request_id)

    def export(self, principal: Principal, selection: VoucherSelection, sealer: DistributionSealer, out: BinaryIO,
               request_id: str = "", file_name: str = "") -> ExportReceipt:
        """Write the sealed file into ``out``; the audit entry (with the file's SHA-256) commits when it is complete."""
        principal.require(Permission.VOUCHER_REVEAL_PIN)
        selection = scoped(principal, selection)
        now = self._clock.now()
        with self._uow() as uow:
            repo = uow.vouchers
            plan = self._plan(repo, selection, now, principal.privileges)
            left_out = tuple(RefusedGroup(state, n, why) for (state, why), n in sorted(plan.left_out.items(),
                                                                                       key=lambda kv: kv[0][0].value))
            if plan.count == 0:
                if not left_out:
                    raise NotFound("voucher", describe(selection))
                summary = ", ".join(f"{g.count} {g.state.value}" for g in left_out)
                raise FailedPrecondition("NOTHING_TO_EXPORT", f"none of the selected vouchers may be exported ({summary}); "
                                         "rules/lifecycle/voucher.yaml says which states may (event export)", describe(selection))
            # bad keys: a clear error before anything is written (after the selection: another tenant's
            # vouchers are reported missing whatever keys come with the request)
            sealer.check()
            writer = _HashingWriter(out)
            report = sealer.seal(self._clear_text(repo, selection, plan, now), writer)  # type: ignore[arg-type]
            receipt = ExportReceipt(writer.sha256.hexdigest(), writer.size, plan.count, plan.totals, tuple(sorted(plan.batches)), now,
                                    report.recipient_fingerprint, report.signer_fingerprint, left_out)
            for owner, (count, batch_ids, left) in sorted(plan.owners.items()):
                # filed under each owner, with its own count, batches and left-out vouchers (never another owner's ids)
                uow.audit.append(audit.entry(principal, now, "voucher.export", "voucher_selection", describe(selection), {}, {
                    "file": file_name, "sha256": receipt.sha256, "size": receipt.size, "count": count,
                    "recipient_fingerprint": receipt.recipient_fingerprint, "signer_fingerprint": receipt.signer_fingerprint,
                    "batches": sorted(batch_ids), "left_out": left}, owner, request_id))
            uow.commit()
        log.info("exported %d vouchers (%s), %d left out, sha256 %s, recipient %s", plan.count, describe(selection),
                 sum(g.count for g in left_out), receipt.sha256, receipt.recipient_fingerprint)
        return receipt

    def _plan(self, repo: VoucherRepository, selection: VoucherSelection, now: datetime, privileges: Iterable[str]) -> _Plan:
        plan = _Plan()
        decided: dict[tuple[str, bool, VoucherState, str], str] = {}  # group -> "" (allowed) or the rule's reason
        for chunk in repo.stream_vouchers(selection, self._chunk):
            for v in chunk:
                batch = plan.batches.get(v.batch_id)
                if batch is None:
                    batch = repo.get_batch(v.batch_id)
                    if batch is None:
                        raise NotFound("voucher batch", v.batch_id)
                # the batch state redemption honours for this voucher: its owner's block of the batch stops the
                # owner's vouchers, not those the operator gave to other tenants (VoucherBatch.others_state)
                group = (v.batch_id, v.expires_at <= now, v.state, batch.state_for(v.owner))
                why = decided.get(group)
                if why is None:
                    facts = {"batch_state": group[3], "expired": group[1]}
                    to_state, refusal = decide_voucher(self._lifecycle, v.state, EXPORT_EVENT, facts, privileges)
                    why = decided[group] = "" if to_state is not None else refusal
                count, batch_ids, left = plan.share(v.owner)
                if why:
                    plan.left_out[(v.state, why)] = plan.left_out.get((v.state, why), 0) + 1
                    left[v.state.value] = left.get(v.state.value, 0) + 1
                    continue
                if v.batch_id not in plan.batches:
                    batch_sealer(self._keys, batch)  # destroyed keys fail here, before the file exists
                    plan.batches[v.batch_id] = batch
                plan.allowed.add(group)
                plan.totals[v.currency] = plan.totals.get(v.currency, 0) + v.face_value_micros
                plan.count += 1
                batch_ids.add(v.batch_id)
                plan.owners[v.owner] = (count + 1, batch_ids, left)
        return plan

    @staticmethod
    def _header(batches: dict[str, VoucherBatch], now: datetime, count: int, totals: dict[str, int]) -> bytes:
        lines = [FORMAT_LINE.decode(), f"# batch_id: {','.join(sorted(batches))}\n", f"# created_at: {now.isoformat()}\n",
                 f"# count: {count}\n"]
        lines += [f"# face_value_total: {cur} {format_face_value(micros, cur)}\n" for cur, micros in sorted(totals.items())]
        return "".join(lines).encode("utf-8") + COLUMNS_LINE

    def _clear_text(self, repo: VoucherRepository, selection: VoucherSelection, plan: _Plan, now: datetime) -> Iterator[bytes]:
        yield self._header(plan.batches, now, plan.count, plan.totals)
        sealers = {batch_id: batch_sealer(self._keys, b) for batch_id, b in plan.batches.items()}
        for chunk in repo.stream_vouchers(selection, self._chunk):
            checkpoint()   # a caller gone away stops the export (the sealer is killed, the file removed)
            # the same transaction as the plan: the vouchers are the ones counted in the header
            yield "".join(self._row(v, plan.batches[v.batch_id], sealers[v.batch_id]) for v in chunk
                          if (v.batch_id, v.expires_at <= now, v.state, plan.batches[v.batch_id].state_for(v.owner))
                          in plan.allowed).encode("utf-8")

    @staticmethod
    def _row(v: Voucher, batch: VoucherBatch, sealer: PinSealer) -> str:
        pin = sealer.open(v.serial, v.nonce, v.ciphertext).decode("ascii")
        return f"{batch.serial.format(v.serial)},{pin},{format_face_value(v.face_value_micros, v.currency)},{v.currency},{v.expires_at.isoformat()}\n"

