from __future__ import annotations

import grpc
import pytest

from billing.v1 import subscriber_pb2 as pb
from tests.integration.helpers import audit_count, field_violations, precondition_reason, rpc_error

pytestmark = pytest.mark.integration
C = grpc.StatusCode


def provision(stack, client, tenant: str = "", plan: str = "TP_POSTPAID_SMART", **kw):  # type: ignore[no-untyped-def]
    req = pb.ProvisionSubscriberRequest(
        tenant_id=tenant, msisdn=kw.get("msisdn") or stack.unique_msisdn(), imsi=kw.get("imsi") or stack.unique_imsi(),
        billing_account=kw.get("account", "ACC-1"), payment_type=kw.get("payment", pb.PAYMENT_TYPE_POSTPAID), tariff_plan=plan,
    )
    return client.subscribers.rpc.ProvisionSubscriber(req).subscriber


def test_lifecycle_follows_the_state_machine(stack) -> None:  # type: ignore[no-untyped-def]
    csr = stack.client("mvno-alpha", "csr")
    s = provision(stack, csr)
    assert (s.status, s.tenant_id) == (pb.SUBSCRIBER_STATUS_PROVISIONED, "mvno-alpha")
    sid = s.subscriber_id
    err = rpc_error(lambda: csr.subscribers.rpc.SuspendSubscriber(pb.SuspendSubscriberRequest(subscriber_id=sid)), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SUBSCRIBER_STATE"
    assert "provisioned" in err.details() and "suspend" in err.details()
    s = csr.subscribers.rpc.ActivateSubscriber(pb.ActivateSubscriberRequest(subscriber_id=sid)).subscriber
    assert s.status == pb.SUBSCRIBER_STATUS_ACTIVE and s.HasField("activate_time")
    s = csr.subscribers.rpc.SuspendSubscriber(pb.SuspendSubscriberRequest(subscriber_id=sid, reason="lost phone")).subscriber
    assert s.status == pb.SUBSCRIBER_STATUS_SUSPENDED
    rpc_error(lambda: csr.subscribers.rpc.ActivateSubscriber(pb.ActivateSubscriberRequest(subscriber_id=sid)), C.FAILED_PRECONDITION)
    assert csr.subscribers.rpc.ReactivateSubscriber(pb.ReactivateSubscriberRequest(subscriber_id=sid)).subscriber.status == pb.SUBSCRIBER_STATUS_ACTIVE
    s = csr.subscribers.rpc.DeactivateSubscriber(pb.DeactivateSubscriberRequest(subscriber_id=sid)).subscriber
    assert s.status == pb.SUBSCRIBER_STATUS_DEACTIVATED and s.HasField("deactivate_time")
    for move in ("ActivateSubscriber", "SuspendSubscriber", "ReactivateSubscriber", "DeactivateSubscriber"):
        req = getattr(pb, f"{move}Request")(subscriber_id=sid)
        rpc_error(lambda: getattr(csr.subscribers.rpc, move)(req), C.FAILED_PRECONDITION)


def test_duplicate_msisdn_or_imsi_within_the_operator_is_already_exists(stack) -> None:  # type: ignore[no-untyped-def]
    alpha, beta = stack.client("mvno-alpha"), stack.client("mvno-beta")
    s = provision(stack, alpha)
    # the same number in another MVNO of the same operator is still a duplicate
    rpc_error(lambda: provision(stack, beta, msisdn=s.msisdn), C.ALREADY_EXISTS)
    rpc_error(lambda: provision(stack, beta, imsi=s.imsi), C.ALREADY_EXISTS)
    rpc_error(lambda: provision(stack, alpha, msisdn="+" + s.msisdn), C.ALREADY_EXISTS)
    # once deactivated, the number can be given to someone else
    alpha.subscribers.rpc.DeactivateSubscriber(pb.DeactivateSubscriberRequest(subscriber_id=s.subscriber_id))
    again = provision(stack, beta, msisdn=s.msisdn, imsi=s.imsi)
    assert again.subscriber_id != s.subscriber_id and again.tenant_id == "mvno-beta"


def test_bad_input_names_each_field_and_changes_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    op = stack.client("mno")
    before = audit_count(stack)
    err = rpc_error(
        lambda: op.subscribers.rpc.ProvisionSubscriber(
            pb.ProvisionSubscriberRequest(msisdn="0123", imsi="12ab", billing_account="", tariff_plan="cheap plan")
        ),
        C.INVALID_ARGUMENT,
    )
    assert set(field_violations(err)) == {"msisdn", "imsi", "billing_account", "payment_type", "tariff_plan"}
    err = rpc_error(
        lambda: op.subscribers.rpc.ProvisionSubscriber(
            pb.ProvisionSubscriberRequest(msisdn=stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="A",
                                          payment_type=42, tariff_plan="TP_X")
        ),
        C.INVALID_ARGUMENT,
    )
    assert set(field_violations(err)) == {"payment_type"}
    rpc_error(lambda: provision(stack, op, tenant="mvno-nobody"), C.NOT_FOUND)
    rpc_error(lambda: op.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest()), C.INVALID_ARGUMENT)
    rpc_error(lambda: op.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id="sub_missing")), C.NOT_FOUND)
    rpc_error(lambda: op.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(status=9)), C.INVALID_ARGUMENT)
    rpc_error(lambda: op.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(page_size=-1)), C.INVALID_ARGUMENT)
    assert audit_count(stack) == before


def test_suspended_tenant_cannot_get_new_subscribers(stack) -> None:  # type: ignore[no-untyped-def]
    from billing.v1 import tenant_pb2

    op = stack.client("mno")
    op.tenants.rpc.CreateTenant(tenant_pb2.CreateTenantRequest(tenant_id="mvno-frozen", display_name="F", currency="EUR"))
    op.tenants.rpc.SuspendTenant(tenant_pb2.SuspendTenantRequest(tenant_id="mvno-frozen"))
    err = rpc_error(lambda: provision(stack, op, tenant="mvno-frozen"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "TENANT_SUSPENDED"


def test_filters_and_paging(stack) -> None:  # type: ignore[no-untyped-def]
    beta = stack.client("mvno-beta")
    made = [provision(stack, beta, plan="TP_FILTER_ME", account="ACC-F") for _ in range(5)]
    beta.subscribers.rpc.ActivateSubscriber(pb.ActivateSubscriberRequest(subscriber_id=made[0].subscriber_id))
    listed = beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(tariff_plan="TP_FILTER_ME")).subscribers
    assert {s.subscriber_id for s in listed} == {s.subscriber_id for s in made}
    active = beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(tariff_plan="TP_FILTER_ME", status=pb.SUBSCRIBER_STATUS_ACTIVE)).subscribers
    assert [s.subscriber_id for s in active] == [made[0].subscriber_id]
    by_prefix = beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(msisdn_prefix="+" + made[1].msisdn[:13])).subscribers
    assert made[1].subscriber_id in {s.subscriber_id for s in by_prefix}
    token, pages = "", []
    while True:
        r = beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(tariff_plan="TP_FILTER_ME", page_size=2, page_token=token))
        pages.append([s.subscriber_id for s in r.subscribers])
        token = r.next_page_token
        if not token:
            break
    flat = [x for p in pages for x in p]
    assert sorted(flat) == sorted(s.subscriber_id for s in made) and len(pages) == 3
    got = beta.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(msisdn="+" + made[2].msisdn)).subscriber
    assert got.subscriber_id == made[2].subscriber_id
    changed = beta.subscribers.rpc.ChangeSubscriberPlan(pb.ChangeSubscriberPlanRequest(subscriber_id=made[3].subscriber_id, tariff_plan="TP_OTHER")).subscriber
    assert changed.tariff_plan == "TP_OTHER"


def test_one_mvno_never_sees_or_changes_anothers_subscribers(stack) -> None:  # type: ignore[no-untyped-def]
    alpha, beta = stack.client("mvno-alpha"), stack.client("mvno-beta")
    mine = provision(stack, alpha)
    sid = mine.subscriber_id
    rpc_error(lambda: beta.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id=sid)), C.NOT_FOUND)
    rpc_error(lambda: beta.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(msisdn=mine.msisdn)), C.NOT_FOUND)
    for move in ("ActivateSubscriber", "SuspendSubscriber", "ReactivateSubscriber", "DeactivateSubscriber"):
        req = getattr(pb, f"{move}Request")(subscriber_id=sid)
        rpc_error(lambda: getattr(beta.subscribers.rpc, move)(req), C.NOT_FOUND)
    rpc_error(lambda: beta.subscribers.rpc.ChangeSubscriberPlan(pb.ChangeSubscriberPlanRequest(subscriber_id=sid, tariff_plan="TP_X")), C.NOT_FOUND)
    rpc_error(lambda: provision(stack, beta, tenant="mvno-alpha"), C.PERMISSION_DENIED)
    rpc_error(lambda: beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
    assert all(s.tenant_id == "mvno-beta" for s in beta.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(page_size=1000)).subscribers)
    # the state of alpha's subscriber did not move
    assert alpha.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id=sid)).subscriber.status == pb.SUBSCRIBER_STATUS_PROVISIONED
    # the operator sees both
    assert stack.client("mno").subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id=sid)).subscriber.tenant_id == "mvno-alpha"


def test_roles_limit_what_a_caller_may_do(stack) -> None:  # type: ignore[no-untyped-def]
    auditor = stack.client("mvno-alpha", "auditor")
    rpc_error(lambda: provision(stack, auditor), C.PERMISSION_DENIED)
    own = provision(stack, stack.client("mvno-alpha", "csr"), account="ACC-AUDITED")
    listed = auditor.subscribers.rpc.ListSubscribers(pb.ListSubscribersRequest(billing_account="ACC-AUDITED")).subscribers
    # the auditor reads: its tenant's subscribers, the one just provisioned among them
    assert own.subscriber_id in {s.subscriber_id for s in listed} and {s.tenant_id for s in listed} == {"mvno-alpha"}
    pm = stack.client("mvno-alpha", "product_manager")
    rpc_error(lambda: provision(stack, pm), C.PERMISSION_DENIED)


def test_concurrent_provisioning_of_one_msisdn_creates_exactly_one(stack) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    op = stack.client("mno")
    msisdn = stack.unique_msisdn()

    def attempt(i: int) -> str:
        try:
            provision(stack, op, tenant="mvno-alpha", msisdn=msisdn)
            return "ok"
        except grpc.RpcError as e:
            return e.code().name

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count("ok") == 1, results
    assert set(results) <= {"ok", "ALREADY_EXISTS"}


def test_a_reason_longer_than_500_characters_is_refused_on_reason_and_changes_nothing(stack) -> None:  # type: ignore[no-untyped-def]
    csr = stack.client("mvno-alpha", "csr")
    sid = provision(stack, csr).subscriber_id
    csr.subscribers.rpc.ActivateSubscriber(pb.ActivateSubscriberRequest(subscriber_id=sid))
    before = audit_count(stack)
    long = "x" * 501
    for call in (lambda: csr.subscribers.rpc.SuspendSubscriber(pb.SuspendSubscriberRequest(subscriber_id=sid, reason=long)),
                 lambda: csr.subscribers.rpc.DeactivateSubscriber(pb.DeactivateSubscriberRequest(subscriber_id=sid, reason=long)),
                 lambda: csr.subscribers.rpc.SetSubscriberBarring(pb.SetSubscriberBarringRequest(subscriber_id=sid, flag="bar_premium",
                                                                                               barred=True, reason=long)),
                 lambda: csr.subscribers.rpc.SwapSubscriberSim(pb.SwapSubscriberSimRequest(subscriber_id=sid, imsi=stack.unique_imsi(), reason=long))):
        err = rpc_error(call, C.INVALID_ARGUMENT)
        assert "500" in field_violations(err)["reason"]
    assert audit_count(stack) == before
    got = csr.subscribers.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id=sid)).subscriber
    assert got.status == pb.SUBSCRIBER_STATUS_ACTIVE and not got.barring_flags
    # 500 is enough
    s = csr.subscribers.rpc.SuspendSubscriber(pb.SuspendSubscriberRequest(subscriber_id=sid, reason="y" * 500)).subscriber
    assert s.status == pb.SUBSCRIBER_STATUS_SUSPENDED
