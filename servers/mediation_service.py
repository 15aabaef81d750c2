"""MediationService: proto <-> domain only; the use cases live in engine.mediation.desk."""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from datetime import datetime
from typing import BinaryIO, Iterator, cast

import grpc

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from engine.cdr import decode_attributes
from engine.errors import InvalidArgument
from engine.mediation.desk import MediatedFile, MediationDesk
from engine.mediation.outcome import ReconciliationSummary, RejectedRecord
from engine.mediation.rows import CdrRow
from engine.paging import next_token, page_request
from engine.settings import Settings
from servers.context import current_principal
from servers.progress import progress_stream
from servers.convert import CDR_DIRECTIONS, CDR_SERVICES, money, service_name, ts
from servers.root import Root

CDR_CHUNK = 500
SPOOL_IN_MEMORY = 8 << 20   # uploads larger than this spool to disk


def cdr_pb(row: CdrRow) -> pb.NormalisedCdr:
    (cdr_id, source, origin_id, service, direction, start, a, b, imsi, duration, up, down, events, visited, ss,
     charge, currency, tenant, attributes) = row
    msg = pb.NormalisedCdr(
        cdr_id=cdr_id, source=source, origin_id=origin_id, service=CDR_SERVICES.proto_or_unspecified(service),
        direction=CDR_DIRECTIONS.proto_or_unspecified(direction),
        start_time=ts(datetime.fromisoformat(start.replace("Z", "+00:00"))), a_number=a, b_number=b, imsi=imsi,
        duration_seconds=duration, volume_up_bytes=up, volume_down_bytes=down, event_count=events, visited_network=visited,
        supplementary_code=ss, tenant_id=tenant,
        attributes=decode_attributes(attributes),
    )
    if charge is not None:
        msg.charge.CopyFrom(money(charge, currency))
    return msg


def summary_pb(s: ReconciliationSummary, tenant_id: str) -> pb.FileSummary:
    msg = pb.FileSummary(
        file_id=s.file_id, file_name=s.file_name, layout=s.layout, tenant_id=tenant_id, records_in=s.records_in,
        normalised=s.normalised, filtered=s.filtered, rejected=s.rejected, duplicates=s.duplicates, aggregated=s.aggregated,
        header_rows=s.header_rows, blank_lines=s.blank_lines, bytes_in=s.bytes_in, complete=s.complete,
        already_ingested=s.already_ingested, rated=s.rated, unrated=s.unrated, content_sha256=s.content_sha256,
        layout_version=s.layout_version, source=s.source, non_billable_legs=s.non_billable_legs,
    )
    if s.file_error is not None:
        e = s.file_error
        msg.file_error.CopyFrom(pb.FileError(code=e.code, message=e.message, line=e.line, byte_offset=e.byte_offset))
    return msg


def reject_pb(r: RejectedRecord) -> pb.RejectedCdrRecord:
    return pb.RejectedCdrRecord(record_no=r.record_no, line=r.line, byte_offset=r.byte_offset, code=r.code, field=r.field,
                                reason=r.reason, raw=r.raw, raw_truncated=r.raw_truncated)


class MediationServicer(rpc.MediationServiceServicer):
    def __init__(self, desk: MediationDesk, max_upload_bytes: int = Settings.max_mediation_upload_bytes) -> None:
        self.desk = desk
        self.max_upload_bytes = max_upload_bytes

    def MediateFile(self, request_iterator: Iterator[pb.MediateFileRequest], context: grpc.ServicerContext) -> Iterator[pb.MediateFileResponse]:
        principal = current_principal()
        header = _header(request_iterator)
        with _spooled(request_iterator, self.max_upload_bytes) as (spool, file_id):
            # the file is mediated on a worker thread; each committed block becomes a progress message meanwhile
            for reply in progress_stream(context, lambda progress: self.desk.mediate_file(
                    principal, header.layout, spool, file_id, header.file_name or "upload", rate=header.rate, source=header.source,
                    cdr_page=CDR_CHUNK if header.return_cdrs else 0, progress=progress), _progress_pb, lambda done: done, "mediate"):
                yield from [reply] if isinstance(reply, pb.MediateFileResponse) else _mediated_pb(reply, principal.tenant_id)

    def GetFileSummary(self, request: pb.GetFileSummaryRequest, context: grpc.ServicerContext) -> pb.GetFileSummaryResponse:
        principal = current_principal()
        tenant = request.tenant_id or principal.tenant_id
        return pb.GetFileSummaryResponse(summary=summary_pb(self.desk.summary(principal, request.file_id, tenant), tenant))

    def ListRejects(self, request: pb.ListRejectsRequest, context: grpc.ServicerContext) -> pb.ListRejectsResponse:
        principal = current_principal()
        page = page_request(request.page_size, request.page_token, "rejects", int)
        after = page.after if isinstance(page.after, int) else 0
        items = self.desk.rejects(principal, request.file_id, after, page.size, request.tenant_id)
        return pb.ListRejectsResponse(rejects=[reject_pb(r) for r in items], next_page_token=next_token(items, page, lambda r: r.record_no))

    def ListLayouts(self, request: pb.ListLayoutsRequest, context: grpc.ServicerContext) -> pb.ListLayoutsResponse:
        return pb.ListLayoutsResponse(layouts=[pb.CdrLayout(name=n, description=d) for n, d in self.desk.layouts(current_principal())])


def _mediated_pb(done: MediatedFile, tenant_id: str) -> Iterator[pb.MediateFileResponse]:
    """The end of a MediateFile stream: the normalised CDRs when asked for, then the summary."""
    for page in done.cdrs:
        yield pb.MediateFileResponse(cdrs=pb.NormalisedCdrChunk(cdrs=[cdr_pb(r) for r in page]))
    yield pb.MediateFileResponse(summary=summary_pb(done.summary, tenant_id))


def _progress_pb(done: int, total: int) -> pb.MediateFileResponse:
    return pb.MediateFileResponse(progress=pb.MediateFileProgress(bytes_done=done, bytes_total=total))


def _header(request_iterator: Iterator[pb.MediateFileRequest]) -> pb.MediateFileHeader:
    first = next(request_iterator, None)
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidArgument.field("header", "the first message must carry the header (layout, file name)")
    return first.header


@contextmanager
def _spooled(request_iterator: Iterator[pb.MediateFileRequest], max_bytes: int) -> Iterator[tuple[BinaryIO, str]]:
    """The uploaded bytes (the data messages after the header) in a seekable spool, and their SHA-256 (with the
    layout and the source, the file's identity); more than ``max_bytes`` in all is refused and the spool dropped."""
    digest = hashlib.sha256()
    total = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        for message in request_iterator:
            if message.WhichOneof("part") != "data":
                raise InvalidArgument.field("header", "only the first message may carry a header")
            total += len(message.data)
            if total > max_bytes:
                raise InvalidArgument.field("data", f"the file is larger than {max_bytes:,} bytes (setting max_mediation_upload_bytes): "
                                                    "split it and mediate the parts")
            digest.update(message.data)
            spool.write(message.data)
        spool.seek(0)
        yield cast(BinaryIO, spool), digest.hexdigest()


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_MediationServiceServicer_to_server(MediationServicer(root.mediation, root.settings.max_mediation_upload_bytes), server)
    return service_name(pb, "MediationService")
