"""MediationService over the wire: the methods of engine.mediation.desk.MediationDesk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import grpc

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from clients.services.base import Page

UPLOAD_CHUNK = 1 << 20   # bytes per upload message


@dataclass(frozen=True)
class MediatedFile:
    """The stored reconciliation summary of an upload, and its normalised CDRs when they were asked for."""

    summary: pb.FileSummary
    cdrs: list[pb.NormalisedCdr] = field(default_factory=list)


class MediationClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.MediationServiceStub(channel)

    def mediate(self, stream: BinaryIO, layout: str, file_name: str, rate: bool = False, return_cdrs: bool = False,
                progress: Callable[[int], None] | None = None, source: str = "") -> MediatedFile:
        """Upload ``stream`` for the server to mediate with ``layout`` ("tap3" for a TAP 3.12 file) and store;
        ``rate`` also rates it there.  ``source`` names where the file comes from (rules/mediation/sources.yaml).
        ``progress(bytes sent)`` follows the upload."""
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
            else:
                cdrs.extend(reply.cdrs.cdrs)
        if summary is None:
            raise RuntimeError("the server ended MediateFile without the summary")
        return MediatedFile(summary, cdrs)

    def mediate_path(self, path: Path | str, layout: str, rate: bool = False, return_cdrs: bool = False,
                     progress: Callable[[int], None] | None = None, source: str = "") -> MediatedFile:
        with open(path, "rb") as stream:
            return self.mediate(stream, layout, Path(path).name, rate, return_cdrs, progress, source)

    def summary(self, file_id: str, tenant_id: str = "") -> pb.FileSummary:
        """``tenant_id``: whose file (the operator may name any tenant); empty: the caller's own."""
        return self.rpc.GetFileSummary(pb.GetFileSummaryRequest(file_id=file_id, tenant_id=tenant_id)).summary

    def rejects(self, file_id: str, page_size: int = 0, page_token: str = "", tenant_id: str = "") -> Page[pb.RejectedCdrRecord]:
        reply = self.rpc.ListRejects(pb.ListRejectsRequest(file_id=file_id, page_size=page_size, page_token=page_token,
                                                           tenant_id=tenant_id))
        return Page(list(reply.rejects), reply.next_page_token)

    def layouts(self) -> list[pb.CdrLayout]:
        return list(self.rpc.ListLayouts(pb.ListLayoutsRequest()).layouts)
