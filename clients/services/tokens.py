"""TokenService over the wire: the methods of engine.tokens.TokenDesk."""

from __future__ import annotations

from typing import Iterable

import grpc

from billing.v1 import token_pb2 as pb
from billing.v1 import token_pb2_grpc as rpc
from clients.services.base import Page, enum_number


class TokenClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.TokenServiceStub(channel)

    def issue(self, subject: str, role: str, tenant_id: str = "", ttl_seconds: int = 0,
              privileges: Iterable[str] = ()) -> pb.IssueTokenResponse:
        """The token and its secret (shown once).  ``role`` in the operator's words: "csr", "mvno_admin" ..."""
        return self.rpc.IssueToken(pb.IssueTokenRequest(subject=subject, tenant_id=tenant_id, role=enum_number(pb.Role, "ROLE_", role),
                                                        ttl_seconds=ttl_seconds, privileges=list(privileges)))

    def revoke(self, token_id: str) -> pb.TokenInfo:
        return self.rpc.RevokeToken(pb.RevokeTokenRequest(token_id=token_id)).token

    def approve(self, token_id: str) -> pb.ApproveTokenResponse:
        """A second security officer's approval: the token and the second half of its bearer (shown once)."""
        return self.rpc.ApproveToken(pb.ApproveTokenRequest(token_id=token_id))

    def reject(self, token_id: str, reason: str = "") -> pb.TokenInfo:
        return self.rpc.RejectToken(pb.RejectTokenRequest(token_id=token_id, reason=reason)).token

    def list(self, tenant_id: str = "", include_revoked: bool = False, page_size: int = 0, page_token: str = "") -> Page[pb.TokenInfo]:
        reply = self.rpc.ListTokens(pb.ListTokensRequest(tenant_id=tenant_id, include_revoked=include_revoked, page_size=page_size,
                                                         page_token=page_token))
        return Page(list(reply.tokens), reply.next_page_token)

    def whoami(self) -> pb.TokenInfo:
        return self.rpc.WhoAmI(pb.WhoAmIRequest()).token
