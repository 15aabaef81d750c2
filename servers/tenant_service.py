"""TenantService: proto <-> domain only; the use cases live in engine.tenancy."""

from __future__ import annotations

import grpc

from billing.v1 import tenant_pb2 as pb
from billing.v1 import tenant_pb2_grpc as rpc
from engine.model import Tenant, TenantKind, TenantStatus
from engine.paging import next_token, page_request
from engine.tenancy import TenantAdmin
from servers.context import current_principal
from servers.convert import EnumMap, service_name, ts
from servers.root import Root

KINDS = EnumMap(pb.TenantKind, "TENANT_KIND_", TenantKind)
STATUSES = EnumMap(pb.TenantStatus, "TENANT_STATUS_", TenantStatus)


def tenant_pb(t: Tenant) -> pb.Tenant:
    return pb.Tenant(
        tenant_id=t.tenant_id, display_name=t.display_name, kind=KINDS.proto(t.kind), status=STATUSES.proto(t.status),
        parent_tenant_id=t.parent_tenant_id, create_time=ts(t.create_time), update_time=ts(t.update_time), currency=t.currency,
    )


class TenantServicer(rpc.TenantServiceServicer):
    def __init__(self, admin: TenantAdmin) -> None:
        self.admin = admin

    def CreateTenant(self, request: pb.CreateTenantRequest, context: grpc.ServicerContext) -> pb.CreateTenantResponse:
        t = self.admin.create_mvno(current_principal(), request.tenant_id, request.display_name, request.currency)
        return pb.CreateTenantResponse(tenant=tenant_pb(t))

    def GetTenant(self, request: pb.GetTenantRequest, context: grpc.ServicerContext) -> pb.GetTenantResponse:
        return pb.GetTenantResponse(tenant=tenant_pb(self.admin.get(current_principal(), request.tenant_id)))

    def ListTenants(self, request: pb.ListTenantsRequest, context: grpc.ServicerContext) -> pb.ListTenantsResponse:
        page = page_request(request.page_size, request.page_token, "tenants", str)
        status = STATUSES.domain(request.status, "status", required=False)
        items = self.admin.list(current_principal(), page, status)
        return pb.ListTenantsResponse(
            tenants=[tenant_pb(t) for t in items], next_page_token=next_token(items, page, lambda t: t.tenant_id)
        )

    def SuspendTenant(self, request: pb.SuspendTenantRequest, context: grpc.ServicerContext) -> pb.SuspendTenantResponse:
        t = self.admin.set_status(current_principal(), request.tenant_id, TenantStatus.SUSPENDED, request.reason)
        return pb.SuspendTenantResponse(tenant=tenant_pb(t))

    def ReactivateTenant(self, request: pb.ReactivateTenantRequest, context: grpc.ServicerContext) -> pb.ReactivateTenantResponse:
        t = self.admin.set_status(current_principal(), request.tenant_id, TenantStatus.ACTIVE)
        return pb.ReactivateTenantResponse(tenant=tenant_pb(t))


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_TenantServiceServicer_to_server(TenantServicer(root.tenants), server)
    return service_name(pb, "TenantService")
