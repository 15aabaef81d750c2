"""AuditService: proto <-> domain only; reading the log is engine.audit.AuditDesk's."""

from __future__ import annotations

import json

import grpc

from billing.v1 import audit_pb2 as pb
from billing.v1 import audit_pb2_grpc as rpc
from engine.audit import AuditDesk, AuditEntry
from engine.paging import next_token, page_request
from servers.context import current_principal
from servers.convert import service_name, ts
from servers.root import Root


def entry_pb(e: AuditEntry) -> pb.AuditEntry:
    return pb.AuditEntry(
        sequence=e.sequence, time=ts(e.time), subject=e.subject, tenant_id=e.tenant_id, role=e.role, action=e.action,
        object_type=e.object_type, object_id=e.object_id, before_json=json.dumps(e.before, sort_keys=True),
        after_json=json.dumps(e.after, sort_keys=True), request_id=e.request_id,
    )


class AuditServicer(rpc.AuditServiceServicer):
    def __init__(self, desk: AuditDesk) -> None:
        self.desk = desk

    def ListAuditEntries(self, request: pb.ListAuditEntriesRequest, context: grpc.ServicerContext) -> pb.ListAuditEntriesResponse:
        page = page_request(request.page_size, request.page_token, "audit", int)
        items = self.desk.list(current_principal(), request.tenant_id, request.object_type, request.object_id, page)
        return pb.ListAuditEntriesResponse(entries=[entry_pb(e) for e in items],
                                           next_page_token=next_token(items, page, lambda e: e.sequence))


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_AuditServiceServicer_to_server(AuditServicer(root.audit), server)
    return service_name(pb, "AuditService")
