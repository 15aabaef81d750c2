"""MediationService over the wire: the methods of engine.mediation.desk.MediationDesk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import grpc

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from clients.services.base import Page, enum_number, timestamp
from engine.cdr import MediatedCdr

UPLOAD_CHUNK = 1 << 20   # bytes per upload message


def cdr_message(cdr: MediatedCdr) -> pb.NormalisedCdr:
    """A normalised CDR (a row of a ``*.cdr.csv`` file, engine.cdr) as the wire carries it."""
    msg = pb.NormalisedCdr(
        cdr_id=cdr.cdr_id, source=cdr.source, origin_id=cdr.origin_id,
        service=enum_number(pb.CdrServiceKind, "CDR_SERVICE_KIND_", cdr.service.value),
        direction=enum_number(pb.CdrDirection, "CDR_DIRECTION_", cdr.direction.value), start_time=timestamp(cdr.start_time),
        a_number=cdr.a_number, b_number=cdr.b_number, imsi=cdr.imsi, duration_seconds=cdr.duration_seconds,
        volume_up_bytes=cdr.volume_up_bytes, volume_down_bytes=cdr.volume_down_bytes, event_count=cdr.event_count,
        visited_network=cdr.visited_network, supplementary_code=cdr.supplementary_code, tenant_id=cdr.tenant,
        attributes=cdr.attributes)
    if cdr.charge_micros is not None:
        msg.charge.CopyFrom(common_pb2.Money(amount_micros=cdr.charge_micros, currency=cdr.charge_currency))
    return msg


@dataclass(frozen=True)
class MediatedFile:
    """The stored reconciliation summary of an upload, and its normalised CDRs when they were asked for."""

    summary: pb.FileSummary
    cdrs: list[pb.NormalisedCdr] = field(default_factory=list)


class MediationClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.MediationServiceStub(channel)

    def mediate(self, stream: BinaryIO, layout: str, file_name: str, rate: bool = False, return_cdrs: bool = False,
                progress: Callable[[int], None] | None = None, source: str = "",
                mediated: Callable[[int, int], None] | None = None) -> MediatedFile:
        """Upload ``stream`` for the server to mediate with ``layout`` ("tap3" for a TAP 3.12 file) and store;
        ``rate`` also rates it there.  ``source`` names where the file comes from (rules/mediation/sources.yaml).
        ``progress(bytes sent)`` follows the upload, ``mediated(bytes done, bytes in all)`` the server's work."""
        def requests() -> Iterator[pb.MediateFileRequest]:
            yield pb.MediateFileRequest(header=pb.MediateFileHeader(layout=layout, file_name=file_name, rate=rate,
                                                                    return_cdrs=return_cdrs, source=source))
            sent = 0
            while chunk := stream.read(UPLOAD_CHUNK):
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
                yield pb.MediateFileRequest(data=chunk)

        cdrs: list[pb.NormalisedCdr] = []
        summary: pb.FileSummary | None = None
        for reply in self.rpc.MediateFile(requests()):   # read to the stream's end: leaving early cancels the call
            if reply.HasField("summary"):
                summary = reply.summary
            elif reply.HasField("progress"):
                if mediated is not None:
                    mediated(reply.progress.bytes_done, reply.progress.bytes_total)
            else:
                cdrs.extend(reply.cdrs.cdrs)
        if summary is None:
            raise RuntimeError("the server ended MediateFile without the summary")
        return MediatedFile(summary, cdrs)

    def mediate_path(self, path: Path | str, layout: str, rate: bool = False, return_cdrs: bool = False,
                     progress: Callable[[int], None] | None = None, source: str = "",
                     mediated: Callable[[int, int], None] | None = None) -> MediatedFile:
        with open(path, "rb") as stream:
            return self.mediate(stream, layout, Path(path).name, rate, return_cdrs, progress, source, mediated)

    def summary(self, file_id: str, tenant_id: str = "") -> pb.FileSummary:
        """``tenant_id``: whose file (the operator may name any tenant); empty: the caller's own."""
        return self.rpc.GetFileSummary(pb.GetFileSummaryRequest(file_id=file_id, tenant_id=tenant_id)).summary

    def rejects(self, file_id: str, page_size: int = 0, page_token: str = "", tenant_id: str = "") -> Page[pb.RejectedCdrRecord]:
        reply = self.rpc.ListRejects(pb.ListRejectsRequest(file_id=file_id, page_size=page_size, page_token=page_token,
                                                           tenant_id=tenant_id))
        return Page(list(reply.rejects), reply.next_page_token)

    def layouts(self) -> list[pb.CdrLayout]:
        return list(self.rpc.ListLayouts(pb.ListLayoutsRequest()).layouts)
