from __future__ import annotations

import grpc
import pytest

from billing.v1 import tenant_pb2 as pb
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error

pytestmark = pytest.mark.integration
OK = grpc.StatusCode


def test_operator_creates_lists_suspends_and_reactivates_an_mvno(stack) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    t = op.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id="mvno-gamma", display_name="Gamma", currency="GBP")).tenant
    assert (t.kind, t.status, t.parent_tenant_id, t.currency) == (pb.TENANT_KIND_MVNO, pb.TENANT_STATUS_ACTIVE, "mno", "GBP")
    ids = [x.tenant_id for x in op.tenants.rpc.ListTenants(pb.ListTenantsRequest()).tenants]
    assert {"mno", "mvno-alpha", "mvno-beta", "mvno-gamma"} <= set(ids)
    assert op.tenants.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id="mvno-gamma", reason="unpaid")).tenant.status == pb.TENANT_STATUS_SUSPENDED
    err = rpc_error(lambda: op.tenants.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id="mvno-gamma")), OK.FAILED_PRECONDITION)
    assert precondition_reason(err) == "TENANT_STATE"
    suspended = op.tenants.rpc.ListTenants(pb.ListTenantsRequest(status=pb.TENANT_STATUS_SUSPENDED)).tenants
    assert [x.tenant_id for x in suspended] == ["mvno-gamma"]
    assert op.tenants.rpc.ReactivateTenant(pb.ReactivateTenantRequest(tenant_id="mvno-gamma")).tenant.status == pb.TENANT_STATUS_ACTIVE


def test_a_suspended_mvnos_tokens_stop_working(stack) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    op.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id="mvno-delta", display_name="Delta", currency="EUR"))
    delta = stack.client("mvno-delta")
    assert delta.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mvno-delta")).tenant.tenant_id == "mvno-delta"
    op.tenants.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id="mvno-delta"))
    rpc_error(lambda: delta.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mvno-delta")), OK.PERMISSION_DENIED)
    op.tenants.rpc.ReactivateTenant(pb.ReactivateTenantRequest(tenant_id="mvno-delta"))
    assert delta.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mvno-delta")).tenant.status == pb.TENANT_STATUS_ACTIVE


def test_the_operator_itself_cannot_be_suspended(stack) -> None:  # type: ignore[no-untyped-def]
    err = rpc_error(lambda: stack.client("mno").tenants.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id="mno")), OK.FAILED_PRECONDITION)
    assert precondition_reason(err) == "TENANT_IS_OPERATOR"


def test_bad_create_requests_name_every_bad_field_and_change_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    before = audit_count(stack)
    err = rpc_error(lambda: op.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id="Bad Id", display_name="", currency="EURO")), OK.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"tenant_id", "display_name", "currency"}
    rpc_error(lambda: op.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id="mvno-alpha", display_name="x", currency="EUR")), OK.ALREADY_EXISTS)
    rpc_error(lambda: op.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mvno-nobody")), OK.NOT_FOUND)
    err = rpc_error(lambda: op.tenants.rpc.ListTenants(pb.ListTenantsRequest(status=77)), OK.INVALID_ARGUMENT)
    assert "status" in field_violations(err)
    rpc_error(lambda: op.tenants.rpc.ListTenants(pb.ListTenantsRequest(page_token="not-a-token")), OK.INVALID_ARGUMENT)
    assert audit_count(stack) == before


def test_an_mvno_sees_only_itself_and_changes_no_tenant(stack) -> None:  # type: ignore[no-untyped-def]
    alpha = stack.client("mvno-alpha")
    assert [t.tenant_id for t in alpha.tenants.rpc.ListTenants(pb.ListTenantsRequest()).tenants] == ["mvno-alpha"]
    rpc_error(lambda: alpha.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mvno-beta")), OK.NOT_FOUND)
    rpc_error(lambda: alpha.tenants.rpc.GetTenant(pb.GetTenantRequest(tenant_id="mno")), OK.NOT_FOUND)
    rpc_error(lambda: alpha.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id="mvno-x", display_name="X", currency="EUR")), OK.PERMISSION_DENIED)
    rpc_error(lambda: alpha.tenants.rpc.SuspendTenant(pb.SuspendTenantRequest(tenant_id="mvno-beta")), OK.PERMISSION_DENIED)
    rpc_error(lambda: alpha.tenants.rpc.ReactivateTenant(pb.ReactivateTenantRequest(tenant_id="mvno-alpha")), OK.PERMISSION_DENIED)


def test_paging_walks_every_tenant_once(stack) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    for i in range(5):
        op.tenants.rpc.CreateTenant(pb.CreateTenantRequest(tenant_id=f"mvno-page-{i}", display_name=f"P{i}", currency="EUR"))
    seen: list[str] = []
    token = ""
    while True:
        reply = op.tenants.rpc.ListTenants(pb.ListTenantsRequest(page_size=2, page_token=token))
        seen += [t.tenant_id for t in reply.tenants]
        token = reply.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert {f"mvno-page-{i}" for i in range(5)} <= set(seen)
