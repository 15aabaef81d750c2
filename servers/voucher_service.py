"""VoucherService: proto <-> domain only; the use cases live in engine.vouchers."""

from __future__ import annotations

import logging
import os
import queue
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import grpc

from billing.v1 import common_pb2
from billing.v1 import voucher_pb2 as pb
from billing.v1 import voucher_pb2_grpc as rpc
from engine.errors import ErrorList, FailedPrecondition, InvalidArgument
from engine.eventrules import RuleFilesInvalid
from engine.paging import next_token, page_request
from engine.vouchers.desk import VoucherAmendment, VoucherDesk
from engine.vouchers.distribution import Distributor
from engine.vouchers.face_value import FaceValueError, parse_face_value_limits
from engine.vouchers.generation import BatchRequest
from engine.vouchers.keyring import (
    KeyringError,
    ReloadableKeyProvider,
    add_master_key,
    generate_keyring,
    keys_from_environment,
    load_keyring,
)
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherState
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.profile import ProfileCatalogue, load_profiles
from engine.vouchers.recharge import Recharger
from engine.vouchers.redemption import COMMITTED, RELEASED, RESERVED, Redemption, Reservation
from engine.vouchers.rules import VoucherRulesMissing, load_voucher_rules
from engine.vouchers.settings import VoucherSettings
from engine.vouchers.transitions import BulkOutcome
from engine.yamlio import format_problems
from servers.adapters.gpg import GpgSealer, SigningKeyError, create_signing_key
from servers.context import current_principal
from servers.convert import EnumMap, from_ts, ts
from store.vouchers import SqlVoucherUnitOfWorkFactory

log = logging.getLogger("rulebill.vouchers.server")

VOUCHER_STATE = EnumMap(pb.VoucherState, "VOUCHER_STATE_", VoucherState)
BATCH_STATE = EnumMap(pb.BatchState, "BATCH_STATE_", BatchState)
_EVENTS = {pb.VOUCHER_EVENT_ACTIVATE: "activate", pb.VOUCHER_EVENT_BLOCK: "block", pb.VOUCHER_EVENT_UNBLOCK: "unblock",
           pb.VOUCHER_EVENT_MARK_DAMAGED: "mark_damaged", pb.VOUCHER_EVENT_MARK_STOLEN: "mark_stolen",
           pb.VOUCHER_EVENT_EXPIRE: "expire", pb.VOUCHER_EVENT_PURGE: "purge"}
_BATCH_EVENTS = {pb.BATCH_EVENT_ACTIVATE: "activate", pb.BATCH_EVENT_BLOCK: "block", pb.BATCH_EVENT_UNBLOCK: "unblock",
                 pb.BATCH_EVENT_EXPIRE: "expire", pb.BATCH_EVENT_PURGE: "purge"}
_RESERVATION_STATUS = {RESERVED: pb.RESERVATION_STATUS_RESERVED, COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
                       RELEASED: pb.RESERVATION_STATUS_RELEASED}
DEFAULT_CHUNK, MAX_CHUNK = 500, 1000
EXPORT_BLOCK = 256 * 1024
SIGNING_KEY_ENV = "RULEBILL_VOUCHER_SIGNING_KEY_FILE"
SIGNING_KEY_NAME = "voucher-signing-key.asc"


def money(micros: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_micros=micros, currency=currency)


def batch_pb(b: VoucherBatch) -> pb.VoucherBatch:
    return pb.VoucherBatch(
        batch_id=b.batch_id, profile_id=b.profile_id, tenant_id=b.owner, dealer=b.dealer,
        face_value=money(b.face_value_micros, b.currency), count=b.count, first_serial=b.first_serial, last_serial=b.last_serial,
        serial_prefix=b.serial.prefix, serial_digits=b.serial.digits, pin_length=b.pin_length, create_time=ts(b.created_at),
        expire_time=ts(b.expires_at), recharge_extension_days=b.recharge_extension_days, state=BATCH_STATE.proto(b.state),
        pin_cipher=b.pin_cipher, key_wrap=b.key_wrap, master_key_version=b.master_key_version,
        lookup_key_version=b.lookup_key_version, pins_shredded=b.wrapped_data_key is None,
    )


def voucher_pb(v: Voucher, serial_text: str = "", pin: str | None = None) -> pb.Voucher:
    return pb.Voucher(
        serial=v.serial, serial_text=serial_text, batch_id=v.batch_id, tenant_id=v.owner, dealer=v.dealer,
        state=VOUCHER_STATE.proto(v.state), face_value=money(v.face_value_micros, v.currency), expire_time=ts(v.expires_at),
        pin=pin or "", redeemed_by=v.redeemed_by, redeem_time=ts(v.redeemed_at),
    )


def redemption_pb(r: Redemption) -> pb.RedeemResponse:
    return pb.RedeemResponse(serial=r.serial, batch_id=r.batch_id, credited=money(r.credited_micros, r.currency),
                             balance=money(r.balance_micros, r.currency), valid_until=ts(r.valid_until),
                             redeem_time=ts(r.redeemed_at), transaction_id=r.transaction_id, request_id=r.request_id)


def reservation_pb(r: Reservation) -> pb.Reservation:
    return pb.Reservation(reservation_id=r.reservation_id, msisdn=r.msisdn, serial=r.serial, batch_id=r.batch_id,
                          tenant_id=r.tenant_id, face_value=money(r.face_value_micros, r.currency), reserve_time=ts(r.reserved_at),
                          status=_RESERVATION_STATUS[r.status], settle_time=ts(r.settled_at))


def outcome_pb(o: BulkOutcome) -> pb.ChangeVouchersResponse:
    return pb.ChangeVouchersResponse(
        changed=[pb.StateChange(from_state=VOUCHER_STATE.proto(a), to_state=VOUCHER_STATE.proto(b), count=n)
                 for (a, b), n in sorted(o.changed.items(), key=lambda kv: (kv[0][0].value, kv[0][1].value))],
        refused=[pb.RefusedGroup(state=VOUCHER_STATE.proto(g.state), count=g.count, reason=g.reason) for g in o.refused],
        changed_count=o.changed_count, refused_count=o.refused_count,
    )


def selection_from(msg: pb.VoucherSelection, field: str = "selection") -> VoucherSelection:
    errors = ErrorList()
    if not msg.batch_id and not msg.first_serial:
        errors.add(field, "give a batch_id, a serial range (first_serial..last_serial) or both")
    if msg.first_serial < 0 or msg.last_serial < 0:
        errors.add(f"{field}.first_serial", "serial numbers are positive")
    last = msg.last_serial or msg.first_serial
    if msg.first_serial and last < msg.first_serial:
        errors.add(f"{field}.last_serial", "must not be smaller than first_serial")
    errors.raise_if_any("bad voucher selection")
    return VoucherSelection(batch_id=msg.batch_id, first_serial=msg.first_serial or None, last_serial=last or None)


@dataclass
class VoucherParts:
    """What the servicer and other parts (CLI bootstrap, tests) share: built once per Root."""

    desk: VoucherDesk
    recharger: Recharger
    distributor: Distributor
    keys: ReloadableKeyProvider
    profiles: ProfileCatalogue
    signing_key_file: Path


class VoucherServicer(rpc.VoucherServiceServicer):
    def __init__(self, parts: VoucherParts) -> None:
        self.parts = parts
        self.desk = parts.desk

    def GenerateBatch(self, request: pb.GenerateBatchRequest, context: grpc.ServicerContext) -> Iterator[pb.GenerateBatchResponse]:
        principal = current_principal()
        req = BatchRequest(profile_id=request.profile_id, count=request.count, face_value=request.face_value,
                           currency=request.currency, expires_at=from_ts(request.expire_time) if request.HasField("expire_time") else None,
                           owner=request.tenant_id, dealer=request.dealer)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancelled = threading.Event()

        def progress(done: int, total: int) -> None:
            if cancelled.is_set():
                raise _Cancelled()  # rolls the whole batch back
            events.put(("progress", (done, total)))

        def work() -> None:
            try:
                events.put(("batch", self.desk.generate_batch(principal, req, progress)))
            except BaseException as exc:  # noqa: BLE001 - handed to the RPC thread, which raises it
                events.put(("error", exc))

        context.add_callback(cancelled.set)  # the RPC ended (client cancelled or deadline): stop generating
        worker = threading.Thread(target=work, name="voucher-generate", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = events.get()
                if kind == "progress":
                    yield pb.GenerateBatchResponse(progress=pb.Progress(done=value[0], total=value[1]))
                elif kind == "batch":
                    yield pb.GenerateBatchResponse(batch=batch_pb(value))
                    return
                else:
                    raise value
        finally:
            cancelled.set()
            worker.join()

    def GetBatch(self, request: pb.GetBatchRequest, context: grpc.ServicerContext) -> pb.GetBatchResponse:
        return pb.GetBatchResponse(batch=batch_pb(self.desk.get_batch(current_principal(), request.batch_id)))

    def ListBatches(self, request: pb.ListBatchesRequest, context: grpc.ServicerContext) -> pb.ListBatchesResponse:
        page = page_request(request.page_size, request.page_token)
        items = self.desk.list_batches(current_principal(), page.after, page.size)
        return pb.ListBatchesResponse(batches=[batch_pb(b) for b in items],
                                      next_page_token=next_token(items, page, lambda b: b.batch_id))

    def GetVoucher(self, request: pb.GetVoucherRequest, context: grpc.ServicerContext) -> pb.GetVoucherResponse:
        principal = current_principal()
        v = self.desk.get_voucher(principal, request.serial)
        return pb.GetVoucherResponse(voucher=voucher_pb(v, self._serial_text(principal, v)))

    def _serial_text(self, principal: Any, v: Voucher) -> str:
        return self.desk.get_batch(principal, v.batch_id).serial.format(v.serial)

    def StreamVouchers(self, request: pb.StreamVouchersRequest, context: grpc.ServicerContext) -> Iterator[pb.StreamVouchersResponse]:
        principal = current_principal()
        selection = selection_from(request.selection)
        if request.states:
            states = frozenset(VOUCHER_STATE.domain(s, "states") for s in request.states)  # type: ignore[misc]
            selection = VoucherSelection(selection.batch_id, selection.first_serial, selection.last_serial, states)  # type: ignore[arg-type]
        if not 0 <= request.chunk_size <= MAX_CHUNK:
            raise InvalidArgument.field("chunk_size", f"must be 1..{MAX_CHUNK} (0 = {DEFAULT_CHUNK})")
        # the desk holds one transaction for the whole stream: everything it needs comes from there
        for chunk in self.desk.stream_vouchers(principal, selection, request.chunk_size or DEFAULT_CHUNK, reveal=request.reveal):
            yield pb.StreamVouchersResponse(vouchers=[voucher_pb(r.voucher, r.serial_text, r.pin) for r in chunk])

    def ExportVouchers(self, request: pb.ExportVouchersRequest, context: grpc.ServicerContext) -> Iterator[pb.ExportVouchersResponse]:
        principal = current_principal()
        selection = selection_from(request.selection)
        if not request.recipient_public_key:
            raise InvalidArgument.field("recipient_public_key", "required: the recipient's OpenPGP public key")
        signing = self.parts.signing_key_file
        try:
            operator_key = signing.read_bytes()
        except OSError:
            raise FailedPrecondition("SIGNING_KEY_MISSING", f"the operator's OpenPGP signing key is missing ({signing}); "
                                     "`rulebill bootstrap` creates it", "voucher-signing-key") from None
        sealer = GpgSealer(request.recipient_public_key, operator_key, armor=request.armor)
        folder = Path(tempfile.mkdtemp(prefix="rb-export-"))
        try:
            target = folder / "vouchers.gpg"
            with open(target, "wb") as out:  # ciphertext only: the sealer writes what gpg produced
                receipt = self.parts.distributor.export(principal, selection, sealer, out, request.request_id)
            yield pb.ExportVouchersResponse(receipt=pb.ExportReceipt(
                sha256=receipt.sha256, size=receipt.size, count=receipt.count,
                totals=[money(m, c) for c, m in sorted(receipt.totals.items())], batch_ids=list(receipt.batch_ids),
                create_time=ts(receipt.created_at), recipient_fingerprint=receipt.recipient_fingerprint,
                signer_fingerprint=receipt.signer_fingerprint,
                left_out=[pb.RefusedGroup(state=VOUCHER_STATE.proto(g.state), count=g.count, reason=g.reason) for g in receipt.left_out]))
            with open(target, "rb") as fh:
                while block := fh.read(EXPORT_BLOCK):
                    yield pb.ExportVouchersResponse(data=block)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def Redeem(self, request: pb.RedeemRequest, context: grpc.ServicerContext) -> pb.RedeemResponse:
        return redemption_pb(self.parts.recharger.redeem(current_principal(), request.msisdn, request.pin, request.request_id))

    def ReserveVoucher(self, request: pb.ReserveVoucherRequest, context: grpc.ServicerContext) -> pb.ReserveVoucherResponse:
        held = self.parts.recharger.reserve(current_principal(), request.msisdn, request.pin, request.request_id)
        return pb.ReserveVoucherResponse(reservation=reservation_pb(held))

    def CommitReservation(self, request: pb.CommitReservationRequest, context: grpc.ServicerContext) -> pb.CommitReservationResponse:
        principal = current_principal()
        done = self.parts.recharger.commit(principal, request.reservation_id)
        held = self.parts.recharger.get_reservation(principal, request.reservation_id)
        return pb.CommitReservationResponse(redemption=redemption_pb(done), reservation=reservation_pb(held))

    def ReleaseReservation(self, request: pb.ReleaseReservationRequest, context: grpc.ServicerContext) -> pb.ReleaseReservationResponse:
        held = self.parts.recharger.release(current_principal(), request.reservation_id, request.reason)
        return pb.ReleaseReservationResponse(reservation=reservation_pb(held))

    def RecoverReservations(self, request: pb.RecoverReservationsRequest,
                            context: grpc.ServicerContext) -> pb.RecoverReservationsResponse:
        older = request.older_than.ToTimedelta() if request.HasField("older_than") else None
        return pb.RecoverReservationsResponse(result=outcome_pb(self.desk.recover_reservations(current_principal(), older)))

    def ChangeVouchers(self, request: pb.ChangeVouchersRequest, context: grpc.ServicerContext) -> pb.ChangeVouchersResponse:
        errors = ErrorList()
        event = _EVENTS.get(request.event)
        if event is None:
            errors.add("event", f"must be one of {', '.join(sorted(_EVENTS_NAMES))}")
        try:
            selection = selection_from(request.selection)
        except InvalidArgument as exc:
            errors.violations.extend(exc.violations)
        errors.raise_if_any("cannot change vouchers")
        assert event is not None
        return outcome_pb(self.desk.change_vouchers(current_principal(), event, selection, request.request_id, request.reason))

    def ChangeBatch(self, request: pb.ChangeBatchRequest, context: grpc.ServicerContext) -> pb.ChangeBatchResponse:
        event = _BATCH_EVENTS.get(request.event)
        if event is None:
            raise InvalidArgument.field("event", f"must be one of {', '.join(sorted(_BATCH_EVENT_NAMES))}")
        return pb.ChangeBatchResponse(batch=batch_pb(self.desk.change_batch(current_principal(), request.batch_id, event, request.reason)))

    def AmendVoucher(self, request: pb.AmendVoucherRequest, context: grpc.ServicerContext) -> pb.AmendVoucherResponse:
        principal = current_principal()
        amendment = VoucherAmendment(
            expires_at=from_ts(request.expire_time) if request.HasField("expire_time") else None,
            face_value=request.face_value or None, owner=request.tenant_id or None,
            dealer=request.dealer if request.set_dealer else None,
        )
        v = self.desk.amend(principal, request.serial, amendment, request.request_id)
        return pb.AmendVoucherResponse(voucher=voucher_pb(v, self._serial_text(principal, v)))

    def ExpireDueVouchers(self, request: pb.ExpireDueVouchersRequest, context: grpc.ServicerContext) -> pb.ExpireDueVouchersResponse:
        return pb.ExpireDueVouchersResponse(result=outcome_pb(self.desk.expire_due(current_principal())))

    def RotateKeys(self, request: pb.RotateKeysRequest, context: grpc.ServicerContext) -> pb.RotateKeysResponse:
        from engine.identity import Permission

        principal = current_principal()
        principal.require(Permission.VOUCHER_KEYS)
        if not principal.is_operator:
            raise FailedPrecondition("OPERATOR_ONLY", "only the operator rotates the voucher keys", "voucher-keys")
        keys = self.parts.keys
        if request.add_master_key:
            if keys.path is None:
                raise FailedPrecondition("KEYS_FROM_ENVIRONMENT", "keys come from the environment: set the new master key there and "
                                         "restart, then rotate without add_master_key", "voucher-keys")
            add_master_key(keys.path)
            keys.reload()
        count = self.desk.rotate_keys(principal)
        return pb.RotateKeysResponse(batches_rewrapped=count, master_key_version=keys.current_master_version())

    def ClearRechargeBar(self, request: pb.ClearRechargeBarRequest, context: grpc.ServicerContext) -> pb.ClearRechargeBarResponse:
        self.parts.recharger.clear_bar(current_principal(), request.msisdn, request.reason)
        return pb.ClearRechargeBarResponse()


_EVENTS_NAMES = [pb.VoucherEvent.Name(n)[len("VOUCHER_EVENT_"):] for n in _EVENTS]
_BATCH_EVENT_NAMES = [pb.BatchEvent.Name(n)[len("BATCH_EVENT_"):] for n in _BATCH_EVENTS]


class _Cancelled(Exception):
    """The client went away during GenerateBatch: abandon (and so roll back) the batch."""


def signing_key_path(settings: Any) -> Path:
    return Path(os.environ.get(SIGNING_KEY_ENV) or Path(settings.home) / SIGNING_KEY_NAME)


def provision_voucher_keys(settings: Any, signing_key: bool = True) -> dict[str, str]:
    """Create the installation's voucher key files that are missing, each 0600, and say where they are.

    The one place that makes them (``rulebill bootstrap`` and the server's first start call it):
    the keyring of master and lookup keys (unless the keys come from the environment) and, with
    ``signing_key``, the operator's OpenPGP key that signs distribution files.
    """
    out: dict[str, str] = {}
    if not os.environ.get("RULEBILL_VOUCHER_MASTER_KEYS"):
        path = Path(settings.effective_keyring_file)
        if not path.exists():
            generate_keyring(path)
            log.warning("created a new voucher keyring at %s; back it up: losing it makes exported PINs unrecoverable", path)
            out["keyring_created"] = "yes"
        out["keyring"] = str(path)
    if signing_key:
        signing = signing_key_path(settings)
        if not signing.exists():
            try:
                fingerprint = create_signing_key(signing, "Rulebill voucher distribution <voms@localhost>")
            except SigningKeyError as exc:  # no gpg here: everything but exports works; say so once
                out["signing_key_error"] = str(exc)
                return out
            log.warning("created the operator's OpenPGP signing key %s at %s; give distributors its public key", fingerprint, signing)
            out["signing_key_created"] = fingerprint
        out["signing_key"] = str(signing)
    return out


def _private_file(path: Path, what: str) -> None:
    """Refuse to start on a key file that group or others may read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(f"{path}: {what} must be readable by its owner only (chmod 600 {path})")


def _keys(settings: Any) -> ReloadableKeyProvider:
    if os.environ.get("RULEBILL_VOUCHER_MASTER_KEYS"):
        return ReloadableKeyProvider(keys_from_environment)
    provision_voucher_keys(settings, signing_key=False)  # the first start of an installation without bootstrap
    path = Path(settings.effective_keyring_file)
    return ReloadableKeyProvider(lambda: load_keyring(path), path)


def _profiles(settings: Any) -> ProfileCatalogue:
    folder = Path(settings.plans_dir) / "vouchers"
    if not folder.is_dir():
        return ProfileCatalogue({}, [])
    catalogue = load_profiles([folder], root=Path(settings.plans_dir).parent)
    if catalogue.problems:
        raise ValueError("invalid voucher profiles:\n" + format_problems(catalogue.problems))
    return catalogue


def _voucher_settings(settings: Any) -> VoucherSettings:
    try:
        limits = parse_face_value_limits(settings.voucher_csr_face_value_limits)
    except FaceValueError as exc:
        raise SystemExit(f"setting voucher_csr_face_value_limits: {exc}") from None
    return VoucherSettings(max_batch=settings.max_voucher_batch, csr_face_value_limits=limits,
                           reservation_timeout=timedelta(seconds=settings.voucher_reservation_timeout_seconds))


def build_parts(root: Any) -> VoucherParts:
    """Everything the voucher service needs; a missing or invalid rule or key file stops the start with one message."""
    settings = root.settings
    try:
        rules = load_voucher_rules(Path(settings.rules_dir))
        keys = _keys(settings)
    except (VoucherRulesMissing, KeyringError) as exc:
        raise SystemExit(f"cannot start the voucher service: {exc}") from None
    except RuleFilesInvalid as exc:
        raise SystemExit(f"cannot start the voucher service: {exc}") from None
    signing = signing_key_path(settings)
    if signing.exists():
        _private_file(signing, "the voucher signing key")
    profiles = _profiles(settings)
    uow = SqlVoucherUnitOfWorkFactory(root.uow)
    log.info("voucher rules from %s; recharge lockout %d wrong PINs bar for %d s", rules.folder, rules.lockout.max_failures,
             rules.lockout.bar_seconds)
    return VoucherParts(
        desk=VoucherDesk(uow, profiles, keys, rules.lifecycle, root.clock, _voucher_settings(settings)),  # type: ignore[arg-type]
        recharger=Recharger(uow, keys, rules.lifecycle, root.clock, rules.lockout),  # type: ignore[arg-type]
        distributor=Distributor(uow, keys, rules.lifecycle, root.clock),  # type: ignore[arg-type]
        keys=keys, profiles=profiles, signing_key_file=signing,
    )


def register(server: grpc.Server, root: Any) -> str:
    parts = root.extras.get("vouchers")
    if parts is None:
        parts = root.extras["vouchers"] = build_parts(root)
    rpc.add_VoucherServiceServicer_to_server(VoucherServicer(parts), server)
    return pb.DESCRIPTOR.services_by_name["VoucherService"].full_name
