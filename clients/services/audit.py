"""AuditService over the wire: the methods of engine.audit.AuditDesk."""

from __future__ import annotations

import grpc

from billing.v1 import audit_pb2 as pb
from billing.v1 import audit_pb2_grpc as rpc
from clients.services.base import Page


class AuditClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.AuditServiceStub(channel)

    def list(self, tenant_id: str = "", object_type: str = "", object_id: str = "", page_size: int = 0,
             page_token: str = "") -> Page[pb.AuditEntry]:
        reply = self.rpc.ListAuditEntries(pb.ListAuditEntriesRequest(
            object_type=object_type, object_id=object_id, tenant_id=tenant_id, page_size=page_size, page_token=page_token))
        return Page(list(reply.entries), reply.next_page_token)
