"""TokenService: proto <-> domain only; the use cases live in engine.tokens."""

from __future__ import annotations

import grpc

from billing.v1 import token_pb2 as pb
from billing.v1 import token_pb2_grpc as rpc
from engine.identity import ApiToken, Role, TokenApproval
from engine.paging import next_token, page_request
from engine.tokens import TokenDesk
from servers.context import current_principal
from servers.convert import EnumMap, service_name, ts
from servers.root import Root

ROLES = EnumMap(pb.Role, "ROLE_", Role)
APPROVALS = EnumMap(pb.TokenApproval, "TOKEN_APPROVAL_", TokenApproval)


def token_pb(t: ApiToken) -> pb.TokenInfo:
    return pb.TokenInfo(
        token_id=t.token_id, subject=t.subject, tenant_id=t.tenant_id, role=ROLES.proto(t.role),
        create_time=ts(t.create_time), expire_time=ts(t.expire_time), revoke_time=ts(t.revoke_time),
        privileges=sorted(t.privileges), approval=APPROVALS.proto(t.approval), issued_by=t.issued_by,
        issued_by_token_id=t.issued_by_token, approval_expire_time=ts(t.approval_expire_time), decided_by=t.decided_by,
        decided_by_token_id=t.decided_by_token, decide_time=ts(t.decide_time),
    )


class TokenServicer(rpc.TokenServiceServicer):
    def __init__(self, desk: TokenDesk) -> None:
        self.desk = desk

    def IssueToken(self, request: pb.IssueTokenRequest, context: grpc.ServicerContext) -> pb.IssueTokenResponse:
        token, bearer = self.desk.issue(current_principal(), request.subject, request.tenant_id, ROLES.lenient(request.role),
                                        request.ttl_seconds, frozenset(request.privileges))
        return pb.IssueTokenResponse(token=token_pb(token), secret=bearer)

    def RevokeToken(self, request: pb.RevokeTokenRequest, context: grpc.ServicerContext) -> pb.RevokeTokenResponse:
        return pb.RevokeTokenResponse(token=token_pb(self.desk.revoke(current_principal(), request.token_id)))

    def ApproveToken(self, request: pb.ApproveTokenRequest, context: grpc.ServicerContext) -> pb.ApproveTokenResponse:
        token, second = self.desk.approve(current_principal(), request.token_id)
        return pb.ApproveTokenResponse(token=token_pb(token), second_secret=second)

    def RejectToken(self, request: pb.RejectTokenRequest, context: grpc.ServicerContext) -> pb.RejectTokenResponse:
        return pb.RejectTokenResponse(token=token_pb(self.desk.reject(current_principal(), request.token_id, request.reason)))

    def ListTokens(self, request: pb.ListTokensRequest, context: grpc.ServicerContext) -> pb.ListTokensResponse:
        page = page_request(request.page_size, request.page_token, "tokens", str)
        items = self.desk.list(current_principal(), request.tenant_id, request.include_revoked, page)
        return pb.ListTokensResponse(tokens=[token_pb(t) for t in items], next_page_token=next_token(items, page, lambda t: t.token_id))

    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(token=token_pb(self.desk.whoami(current_principal())))


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_TokenServiceServicer_to_server(TokenServicer(root.tokens), server)
    return service_name(pb, "TokenService")
