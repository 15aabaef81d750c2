"""VoucherService over the wire: the methods of engine.vouchers' VoucherDesk, Recharger and Distributor."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

import grpc

from billing.v1 import voucher_pb2 as pb
from billing.v1 import voucher_pb2_grpc as rpc
from clients.services.base import Page, enum_number, timestamp

Progress = Callable[[int, int], None]   # (done, total)
VOUCHER_EVENTS = ("activate", "block", "unblock", "mark_damaged", "mark_stolen", "recover", "expire", "purge")
BATCH_EVENTS = ("activate", "block", "unblock", "expire", "purge")


class ExportMismatch(Exception):
    """The downloaded distribution file does not match the receipt: nothing was kept."""


def selection(batch_id: str = "", first_serial: int = 0, last_serial: int = 0) -> pb.VoucherSelection:
    """A batch, a serial range (first..last inclusive; last 0 = first) or both."""
    return pb.VoucherSelection(batch_id=batch_id, first_serial=first_serial, last_serial=last_serial)


class VoucherClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.VoucherServiceStub(channel)

    def generate_batch(self, profile_id: str, count: int, face_value: str = "", currency: str = "", expire_time: datetime | None = None,
                       tenant_id: str = "", dealer: str = "", progress: Progress | None = None) -> pb.VoucherBatch:
        """One transaction on the server: the batch is complete or absent.  ``progress(done, total)`` follows it."""
        request = pb.GenerateBatchRequest(profile_id=profile_id, count=count, face_value=face_value, currency=currency,
                                          tenant_id=tenant_id, dealer=dealer, expire_time=timestamp(expire_time) if expire_time else None)
        batch: pb.VoucherBatch | None = None
        for event in self.rpc.GenerateBatch(request):   # read to the stream's end: leaving early cancels the call
            if event.HasField("progress"):
                if progress is not None:
                    progress(event.progress.done, event.progress.total)
            else:
                batch = event.batch
        if batch is None:
            raise RuntimeError("the server ended GenerateBatch without the batch")
        return batch

    def get_batch(self, batch_id: str) -> pb.VoucherBatch:
        return self.rpc.GetBatch(pb.GetBatchRequest(batch_id=batch_id)).batch

    def list_batches(self, page_size: int = 0, page_token: str = "") -> Page[pb.VoucherBatch]:
        reply = self.rpc.ListBatches(pb.ListBatchesRequest(page_size=page_size, page_token=page_token))
        return Page(list(reply.batches), reply.next_page_token)

    def get_voucher(self, serial: int) -> pb.Voucher:
        return self.rpc.GetVoucher(pb.GetVoucherRequest(serial=serial)).voucher

    def stream_vouchers(self, which: pb.VoucherSelection, reveal: bool = False, chunk_size: int = 0,
                        states: Iterable[str] = ()) -> Iterator[list[pb.Voucher]]:
        """The selected vouchers in chunks; PINs only with ``reveal`` (voucher.reveal_pin privilege; audited)."""
        request = pb.StreamVouchersRequest(selection=which, reveal=reveal, chunk_size=chunk_size,
                                           states=[enum_number(pb.VoucherState, "VOUCHER_STATE_", s) for s in states])
        for message in self.rpc.StreamVouchers(request):
            yield list(message.vouchers)

    def export(self, which: pb.VoucherSelection, recipient_public_key: bytes, destination: Path | str, armor: bool = False,
               request_id: str = "", progress: Progress | None = None) -> pb.ExportReceipt:
        """Write the sealed, signed distribution file to ``destination``; ``progress(bytes, size)`` follows the download.
        The bytes are checked against the receipt's SHA-256: on a mismatch nothing is kept (:class:`ExportMismatch`)."""
        request = pb.ExportVouchersRequest(selection=which, recipient_public_key=recipient_public_key, armor=armor,
                                           request_id=request_id)
        receipt: pb.ExportReceipt | None = None
        digest = hashlib.sha256()
        partial = f"{destination}.part"
        try:
            with open(partial, "wb") as out:
                for part in self.rpc.ExportVouchers(request):
                    if part.HasField("receipt"):
                        receipt = part.receipt
                        continue
                    out.write(part.data)
                    digest.update(part.data)
                    if receipt is not None and progress is not None:
                        progress(out.tell(), receipt.size)
            if receipt is None or digest.hexdigest() != receipt.sha256:
                raise ExportMismatch("the file does not match the server's SHA-256; nothing kept")
            os.replace(partial, destination)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return receipt

    def redeem(self, msisdn: str, pin: str, request_id: str) -> pb.RedeemResponse:
        """Recharge ``msisdn`` with a voucher; a retry with the same ``request_id`` never credits twice."""
        return self.rpc.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pin, request_id=request_id))

    def reserve(self, msisdn: str, pin: str, request_id: str) -> pb.Reservation:
        """Two-step recharge, first step: hold a voucher for ``msisdn``; ``request_id`` becomes the reservation id."""
        return self.rpc.ReserveVoucher(pb.ReserveVoucherRequest(msisdn=msisdn, pin=pin, request_id=request_id)).reservation

    def commit(self, reservation_id: str, tenant_id: str = "") -> pb.CommitReservationResponse:
        """Book the credit of a reservation (idempotent).  ``tenant_id``: the reservation's tenant (ids are per tenant);
        empty: the caller's own, or the only tenant it acts for that used the id."""
        return self.rpc.CommitReservation(pb.CommitReservationRequest(reservation_id=reservation_id, tenant_id=tenant_id))

    def release(self, reservation_id: str, reason: str = "", tenant_id: str = "") -> pb.Reservation:
        """Give a reserved voucher back (idempotent); ``tenant_id`` as for :meth:`commit`."""
        return self.rpc.ReleaseReservation(pb.ReleaseReservationRequest(reservation_id=reservation_id, reason=reason,
                                                                        tenant_id=tenant_id)).reservation

    def recover_reservations(self, older_than_seconds: int | None = None) -> pb.ChangeVouchersResponse:
        """The scheduled job: reservations older than the server's timeout (or ``older_than_seconds``) become pending."""
        request = pb.RecoverReservationsRequest()
        if older_than_seconds is not None:
            request.older_than.FromSeconds(older_than_seconds)
        return self.rpc.RecoverReservations(request).result

    def change_vouchers(self, which: pb.VoucherSelection, event: str, reason: str = "", request_id: str = "") -> pb.ChangeVouchersResponse:
        """``event``: one of :data:`VOUCHER_EVENTS`."""
        return self.rpc.ChangeVouchers(pb.ChangeVouchersRequest(
            selection=which, event=enum_number(pb.VoucherEvent, "VOUCHER_EVENT_", event), reason=reason, request_id=request_id))

    def change_batch(self, batch_id: str, event: str, reason: str = "") -> pb.VoucherBatch:
        """``event``: one of :data:`BATCH_EVENTS`."""
        return self.rpc.ChangeBatch(pb.ChangeBatchRequest(
            batch_id=batch_id, event=enum_number(pb.BatchEvent, "BATCH_EVENT_", event), reason=reason)).batch

    def amend(self, serial: int, expire_time: datetime | None = None, face_value: str = "", tenant_id: str = "",
              dealer: str | None = None, request_id: str = "") -> pb.Voucher:
        """Change what is given; ``dealer`` "" clears the dealer, None keeps it."""
        request = pb.AmendVoucherRequest(serial=serial, face_value=face_value, tenant_id=tenant_id, request_id=request_id,
                                         expire_time=timestamp(expire_time) if expire_time else None)
        if dealer is not None:
            request.dealer, request.set_dealer = dealer, True
        return self.rpc.AmendVoucher(request).voucher

    def expire_due(self) -> pb.ChangeVouchersResponse:
        return self.rpc.ExpireDueVouchers(pb.ExpireDueVouchersRequest()).result

    def rotate_keys(self, add_master_key: bool = False) -> pb.RotateKeysResponse:
        return self.rpc.RotateKeys(pb.RotateKeysRequest(add_master_key=add_master_key))

    def clear_recharge_bar(self, msisdn: str, reason: str = "") -> None:
        self.rpc.ClearRechargeBar(pb.ClearRechargeBarRequest(msisdn=msisdn, reason=reason))
