"""TokenService and AuditService: proto <-> domain only."""

from __future__ import annotations

import json

import grpc

from billing.v1 import audit_pb2, audit_pb2_grpc
from billing.v1 import token_pb2 as pb
from billing.v1 import token_pb2_grpc as rpc
from engine.identity import ApiToken, Permission, Role
from engine.paging import next_token, page_request
from engine.ports import AuditFilter
from engine.tokens import TokenDesk
from servers.context import current_principal
from servers.convert import EnumMap, ts

ROLES = EnumMap(pb.Role, "ROLE_", Role)


def token_pb(t: ApiToken) -> pb.TokenInfo:
    return pb.TokenInfo(
        token_id=t.token_id, subject=t.subject, tenant_id=t.tenant_id, role=ROLES.proto(t.role),
        create_time=ts(t.create_time), expire_time=ts(t.expire_time), revoke_time=ts(t.revoke_time),
        privileges=sorted(t.privileges),
    )


class TokenServicer(rpc.TokenServiceServicer):
    def __init__(self, desk: TokenDesk) -> None:
        self.desk = desk

    def IssueToken(self, request: pb.IssueTokenRequest, context: grpc.ServicerContext) -> pb.IssueTokenResponse:
        role = ROLES.lenient(request.role)
        token, bearer = self.desk.issue(
            current_principal(), request.subject, request.tenant_id, role, request.ttl_seconds, frozenset(request.privileges)  # type: ignore[arg-type]
        )
        return pb.IssueTokenResponse(token=token_pb(token), secret=bearer)

    def RevokeToken(self, request: pb.RevokeTokenRequest, context: grpc.ServicerContext) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(token=token_pb(self.desk.revoke(current_principal(), request.token_id)))

    def ListTokens(self, request: pb.ListTokensRequest, context: grpc.ServicerContext) -> pb.ListTokensResponse:
        page = page_request(request.page_size, request.page_token)
        items = self.desk.list(current_principal(), request.tenant_id, request.include_revoked, page)
        return pb.ListTokensResponse(tokens=[token_pb(t) for t in items], next_page_token=next_token(items, page, lambda t: t.token_id))

    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(token=token_pb(self.desk.whoami(current_principal())))


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, uow) -> None:  # type: ignore[no-untyped-def]
        self.uow = uow

    def ListAuditEntries(self, request, context):  # type: ignore[no-untyped-def]
        principal = current_principal()
        principal.require(Permission.AUDIT_READ)
        page = page_request(request.page_size, request.page_token)
        if request.tenant_id:
            principal.require_tenant(request.tenant_id)
            tenants: set[str] | None = {request.tenant_id}
        else:
            tenants = None if principal.is_operator else {principal.tenant_id}
        with self.uow() as uow:
            items = uow.audit.list(AuditFilter(tenants, request.object_type, request.object_id), page.after, page.size)
        return audit_pb2.ListAuditEntriesResponse(
            entries=[
                audit_pb2.AuditEntry(
                    sequence=e.sequence, time=ts(e.time), subject=e.subject, tenant_id=e.tenant_id, role=e.role, action=e.action,
                    object_type=e.object_type, object_id=e.object_id, before_json=json.dumps(e.before, sort_keys=True),
                    after_json=json.dumps(e.after, sort_keys=True), request_id=e.request_id,
                )
                for e in items
            ],
            next_page_token=next_token(items, page, lambda e: e.sequence),
        )


def register(server: grpc.Server, root: "object") -> str:
    rpc.add_TokenServiceServicer_to_server(TokenServicer(root.tokens), server)  # type: ignore[attr-defined]
    return pb.DESCRIPTOR.services_by_name["TokenService"].full_name


def register_audit(server: grpc.Server, root: "object") -> str:
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(root.uow), server)  # type: ignore[attr-defined]
    return audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
