"""VoucherService: proto <-> domain only; the use cases live in engine.vouchers."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import grpc

from billing.v1 import voucher_pb2 as pb
from billing.v1 import voucher_pb2_grpc as rpc
from engine.errors import ErrorList, InvalidArgument
from engine.paging import next_token, page_request
from engine.vouchers.desk import VoucherAmendment
from engine.vouchers.distribution import ExportReceipt
from engine.vouchers.generation import BatchRequest
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherState
from engine.vouchers.ports import VoucherSelection
from engine.vouchers.redemption import COMMITTED, RELEASED, RESERVED, Redemption, Reservation
from engine.vouchers.transitions import BulkOutcome
from servers.context import current_principal
from servers.convert import EnumMap, money, optional_duration, optional_ts, service_name, ts
from servers.progress import progress_stream
from servers.root import Root, VoucherParts

VOUCHER_STATE = EnumMap(pb.VoucherState, "VOUCHER_STATE_", VoucherState)
BATCH_STATE = EnumMap(pb.BatchState, "BATCH_STATE_", BatchState)
_EVENTS = {pb.VOUCHER_EVENT_ACTIVATE: "activate", pb.VOUCHER_EVENT_BLOCK: "block", pb.VOUCHER_EVENT_UNBLOCK: "unblock",
           pb.VOUCHER_EVENT_MARK_DAMAGED: "mark_damaged", pb.VOUCHER_EVENT_MARK_STOLEN: "mark_stolen",
           pb.VOUCHER_EVENT_RECOVER: "recover", pb.VOUCHER_EVENT_EXPIRE: "expire", pb.VOUCHER_EVENT_PURGE: "purge"}
_BATCH_EVENTS = {pb.BATCH_EVENT_ACTIVATE: "activate", pb.BATCH_EVENT_BLOCK: "block", pb.BATCH_EVENT_UNBLOCK: "unblock",
                 pb.BATCH_EVENT_EXPIRE: "expire", pb.BATCH_EVENT_PURGE: "purge"}
_RESERVATION_STATUS = {RESERVED: pb.RESERVATION_STATUS_RESERVED, COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
                       RELEASED: pb.RESERVATION_STATUS_RELEASED}
DEFAULT_CHUNK, MAX_CHUNK = 500, 1000
EXPORT_BLOCK = 256 * 1024


def batch_pb(b: VoucherBatch) -> pb.VoucherBatch:
    return pb.VoucherBatch(
        batch_id=b.batch_id, profile_id=b.profile_id, tenant_id=b.owner, dealer=b.dealer,
        face_value=money(b.face_value_micros, b.currency), count=b.count, first_serial=b.first_serial, last_serial=b.last_serial,
        serial_prefix=b.serial.prefix, serial_digits=b.serial.digits, pin_length=b.pin_length, create_time=ts(b.created_at),
        expire_time=ts(b.expires_at), recharge_extension_days=b.recharge_extension_days, state=BATCH_STATE.proto(b.state),
        pin_cipher=b.pin_cipher, key_wrap=b.key_wrap, master_key_version=b.master_key_version,
        lookup_key_version=b.lookup_key_version, pins_shredded=b.wrapped_data_key is None,
        # the desk shows it to the operator only (engine.vouchers.desk.as_seen_by)
        other_owners_state=BATCH_STATE.proto(BatchState(b.others_state)) if b.others_state else pb.BATCH_STATE_UNSPECIFIED,
    )


def voucher_pb(v: Voucher, serial_text: str = "", pin: str | None = None, batch_state: str = "") -> pb.Voucher:
    return pb.Voucher(
        serial=v.serial, serial_text=serial_text, batch_id=v.batch_id, tenant_id=v.owner, dealer=v.dealer,
        state=VOUCHER_STATE.proto(v.state), face_value=money(v.face_value_micros, v.currency), expire_time=ts(v.expires_at),
        pin=pin or "", redeemed_by=v.redeemed_by, redeem_time=ts(v.redeemed_at),
        batch_state=BATCH_STATE.proto(BatchState(batch_state)) if batch_state else pb.BATCH_STATE_UNSPECIFIED,
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


def batch_request_from(request: pb.GenerateBatchRequest) -> BatchRequest:
    return BatchRequest(profile_id=request.profile_id, count=request.count, face_value=request.face_value,
                        currency=request.currency, expires_at=optional_ts(request, "expire_time"),
                        owner=request.tenant_id, dealer=request.dealer)


def receipt_pb(receipt: ExportReceipt) -> pb.ExportReceipt:
    return pb.ExportReceipt(
        sha256=receipt.sha256, size=receipt.size, count=receipt.count,
        totals=[money(m, c) for c, m in sorted(receipt.totals.items())], batch_ids=list(receipt.batch_ids),
        create_time=ts(receipt.created_at), recipient_fingerprint=receipt.recipient_fingerprint,
        signer_fingerprint=receipt.signer_fingerprint,
        left_out=[pb.RefusedGroup(state=VOUCHER_STATE.proto(g.state), count=g.count, reason=g.reason) for g in receipt.left_out])


def _file_blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(EXPORT_BLOCK):
            yield block


class VoucherServicer(rpc.VoucherServiceServicer):
    def __init__(self, parts: VoucherParts) -> None:
        self.parts = parts
        self.desk = parts.desk

    def GenerateBatch(self, request: pb.GenerateBatchRequest, context: grpc.ServicerContext) -> Iterator[pb.GenerateBatchResponse]:
        principal, batch = current_principal(), batch_request_from(request)
        return progress_stream(
            context, lambda progress: self.desk.generate_batch(principal, batch, progress),
            lambda done, total: pb.GenerateBatchResponse(progress=pb.Progress(done=done, total=total)),
            lambda made: pb.GenerateBatchResponse(batch=batch_pb(made)), "voucher-generate")

    def GetBatch(self, request: pb.GetBatchRequest, context: grpc.ServicerContext) -> pb.GetBatchResponse:
        return pb.GetBatchResponse(batch=batch_pb(self.desk.get_batch(current_principal(), request.batch_id)))

    def ListBatches(self, request: pb.ListBatchesRequest, context: grpc.ServicerContext) -> pb.ListBatchesResponse:
        page = page_request(request.page_size, request.page_token, "voucher_batches", str)
        items = self.desk.list_batches(current_principal(), page.after, page.size)
        return pb.ListBatchesResponse(batches=[batch_pb(b) for b in items],
                                      next_page_token=next_token(items, page, lambda b: b.batch_id))

    def GetVoucher(self, request: pb.GetVoucherRequest, context: grpc.ServicerContext) -> pb.GetVoucherResponse:
        shown = self.desk.get_voucher(current_principal(), request.serial)
        return pb.GetVoucherResponse(voucher=voucher_pb(shown.voucher, shown.serial_text, batch_state=shown.batch_state))

    def StreamVouchers(self, request: pb.StreamVouchersRequest, context: grpc.ServicerContext) -> Iterator[pb.StreamVouchersResponse]:
        principal = current_principal()
        selection = selection_from(request.selection)
        if request.states:
            selection = replace(selection, states=frozenset(VOUCHER_STATE.domain(s, "states") for s in request.states))
        if not 0 <= request.chunk_size <= MAX_CHUNK:
            raise InvalidArgument.field("chunk_size", f"must be 1..{MAX_CHUNK} (0 = {DEFAULT_CHUNK})")
        # the desk holds one transaction for the whole stream: everything it needs comes from there
        for chunk in self.desk.stream_vouchers(principal, selection, request.chunk_size or DEFAULT_CHUNK, reveal=request.reveal):
            yield pb.StreamVouchersResponse(vouchers=[voucher_pb(r.voucher, r.serial_text, r.pin, r.batch_state) for r in chunk])

    def ExportVouchers(self, request: pb.ExportVouchersRequest, context: grpc.ServicerContext) -> Iterator[pb.ExportVouchersResponse]:
        principal = current_principal()
        selection = selection_from(request.selection)
        if not request.recipient_public_key:
            raise InvalidArgument.field("recipient_public_key", "required: the recipient's OpenPGP public key")
        folder = Path(tempfile.mkdtemp(prefix="rb-export-"))
        try:
            with open(folder / "vouchers.gpg", "wb") as out:  # ciphertext only: what gpg wrote
                receipt = self.parts.distributor.export_to(principal, selection, request.recipient_public_key, request.armor, out,
                                                           request.request_id)
            yield pb.ExportVouchersResponse(receipt=receipt_pb(receipt))
            for block in _file_blocks(folder / "vouchers.gpg"):
                yield pb.ExportVouchersResponse(data=block)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def Redeem(self, request: pb.RedeemRequest, context: grpc.ServicerContext) -> pb.RedeemResponse:
        return redemption_pb(self.parts.recharger.redeem(current_principal(), request.msisdn, request.pin, request.request_id))

    def ReserveVoucher(self, request: pb.ReserveVoucherRequest, context: grpc.ServicerContext) -> pb.ReserveVoucherResponse:
        held = self.parts.recharger.reserve(current_principal(), request.msisdn, request.pin, request.request_id)
        return pb.ReserveVoucherResponse(reservation=reservation_pb(held))

    def CommitReservation(self, request: pb.CommitReservationRequest, context: grpc.ServicerContext) -> pb.CommitReservationResponse:
        done, held = self.parts.recharger.commit_reservation(current_principal(), request.reservation_id, request.tenant_id)
        return pb.CommitReservationResponse(redemption=redemption_pb(done), reservation=reservation_pb(held))

    def ReleaseReservation(self, request: pb.ReleaseReservationRequest, context: grpc.ServicerContext) -> pb.ReleaseReservationResponse:
        held = self.parts.recharger.release(current_principal(), request.reservation_id, request.reason, request.tenant_id)
        return pb.ReleaseReservationResponse(reservation=reservation_pb(held))

    def RecoverReservations(self, request: pb.RecoverReservationsRequest,
                            context: grpc.ServicerContext) -> pb.RecoverReservationsResponse:
        older = optional_duration(request, "older_than")
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
        amendment = VoucherAmendment(
            expires_at=optional_ts(request, "expire_time"),
            face_value=request.face_value or None, owner=request.tenant_id or None,
            dealer=request.dealer if request.set_dealer else None,
        )
        shown = self.desk.amend(current_principal(), request.serial, amendment, request.request_id)
        return pb.AmendVoucherResponse(voucher=voucher_pb(shown.voucher, shown.serial_text, batch_state=shown.batch_state))

    def ExpireDueVouchers(self, request: pb.ExpireDueVouchersRequest, context: grpc.ServicerContext) -> pb.ExpireDueVouchersResponse:
        return pb.ExpireDueVouchersResponse(result=outcome_pb(self.desk.expire_due(current_principal())))

    def RotateKeys(self, request: pb.RotateKeysRequest, context: grpc.ServicerContext) -> pb.RotateKeysResponse:
        done = self.desk.rotate_master_key(current_principal(), request.add_master_key)
        return pb.RotateKeysResponse(batches_rewrapped=done.batches_rewrapped, master_key_version=done.master_key_version)

    def ClearRechargeBar(self, request: pb.ClearRechargeBarRequest, context: grpc.ServicerContext) -> pb.ClearRechargeBarResponse:
        self.parts.recharger.clear_bar(current_principal(), request.msisdn, request.reason)
        return pb.ClearRechargeBarResponse()


_EVENTS_NAMES = [pb.VoucherEvent.Name(n)[len("VOUCHER_EVENT_"):] for n in _EVENTS]
_BATCH_EVENT_NAMES = [pb.BatchEvent.Name(n)[len("BATCH_EVENT_"):] for n in _BATCH_EVENTS]


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_VoucherServiceServicer_to_server(VoucherServicer(root.vouchers), server)
    return service_name(pb, "VoucherService")
