"""TenantService over the wire: the methods of engine.tenancy.TenantAdmin."""

from __future__ import annotations

import grpc

from billing.v1 import tenant_pb2 as pb
from billing.v1 import tenant_pb2_grpc as rpc
from clients.services.base import Page, enum_number


class TenantClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.TenantServiceStub(channel)

    def create_mvno(self, tenant_id: str, display_name: str, currency: str = "EUR") -> pb.Tenant:
        reply = self.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id=tenant_id, display_name=display_name, currency=currency))
        return reply.tenant

    def get(self, tenant_id: str) -> pb.Tenant:
        return self.rpc.GetTenant(pb.GetTenantRequest(tenant_id=tenant_id)).tenant

    def list(self, status: str = "", page_size: int = 0, page_token: str = "") -> Page[pb.Tenant]:
        """``status``: "active", "suspended" or "" for both."""
        reply = self.rpc.ListTenants(pb.ListTenantsRequest(page_size=page_size, page_token=page_token,
                                                           status=enum_number(pb.TenantStatus, "TENANT_STATUS_", status)))
        return Page(list(reply.tenants), reply.next_page_token)

    def suspend(self, tenant_id: str, reason: str = "") -> pb.Tenant:
        return self.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id=tenant_id, reason=reason)).tenant

    def reactivate(self, tenant_id: str) -> pb.Tenant:
        return self.rpc.ReactivateTenant(pb.ReactivateTenantRequest(tenant_id=tenant_id)).tenant
