"""Every RPC except health and reflection needs a valid bearer token."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.clock import FixedClock
from engine.identity import Role
from tests.integration.rpc_catalogue import all_rpcs, call, registered_service_names

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rpcs(stack):  # type: ignore[no-untyped-def]
    found = all_rpcs(registered_service_names(stack.root))
    assert len(found) >= 18, "the catalogue must see every registered RPC"
    return found


def _code(fn) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code()


def test_every_rpc_refuses_a_call_without_a_token(stack, rpcs) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(stack.address) as ch:
        for rpc in rpcs:
            assert _code(lambda: call(ch, rpc)) == grpc.StatusCode.UNAUTHENTICATED, rpc.path


@pytest.mark.parametrize(
    "header",
    ["Bearer rbt_nope_nope", "Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer "],
)
def test_every_rpc_refuses_bad_credentials(stack, rpcs, header) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(stack.address) as ch:
        for rpc in rpcs:
            code = _code(lambda: call(ch, rpc, metadata=[("authorization", header)]))
            assert code == grpc.StatusCode.UNAUTHENTICATED, (rpc.path, header)


def test_every_rpc_refuses_expired_and_revoked_tokens(stack, rpcs) -> None:  # type: ignore[no-untyped-def]
    # an expired token: issued by a desk whose clock is 2 days in the past, 1 hour lifetime
    from engine.tokens import TokenDesk

    past = FixedClock(stack.root.clock.now() - timedelta(days=2))
    _, expired = TokenDesk(stack.root.uow, past, 3600).issue(None, "old", "mno", Role.OPERATOR_ADMIN, 3600)
    _, revoked = stack.root.tokens.issue(None, "gone", "mno", Role.OPERATOR_ADMIN, 0)
    token_id = revoked.split("_")[1]
    from engine.identity import SYSTEM
    from dataclasses import replace

    stack.root.tokens.revoke(replace(SYSTEM, tenant_id="mno"), token_id)
    with grpc.insecure_channel(stack.address) as ch:
        for rpc in rpcs:
            for bearer in (expired, revoked):
                code = _code(lambda: call(ch, rpc, metadata=[("authorization", f"Bearer {bearer}")]))
                assert code == grpc.StatusCode.UNAUTHENTICATED, rpc.path


def test_a_token_with_the_right_id_but_wrong_secret_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    good = stack.token("mno")
    prefix, token_id, _secret = good.split("_", 2)
    forged = f"{prefix}_{token_id}_{'A' * 43}"
    from billing.v1 import token_pb2

    c = stack.client(token=forged)
    assert _code(lambda: c.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest())) == grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_need_no_token(stack) -> None:  # type: ignore[no-untyped-def]
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(stack.address) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"billing.v1.TenantService", "billing.v1.SubscriberService", "grpc.health.v1.Health"} <= names


def test_whoami_reports_the_callers_identity(stack) -> None:  # type: ignore[no-untyped-def]
    from billing.v1 import token_pb2

    me = stack.client("mvno-alpha", "csr").tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest()).token
    assert (me.tenant_id, me.role, me.subject) == ("mvno-alpha", token_pb2.ROLE_CSR, "test-mvno-alpha-csr")


def test_each_call_is_judged_on_its_own_token_though_a_method_is_guarded_once(stack) -> None:  # type: ignore[no-untyped-def]
    """The interceptor builds one guard per method (servers/interceptors.py) instead of one per call: callers of the
    same method, interleaved, still each get their own identity, and a bad token between two good ones is refused."""
    from billing.v1 import token_pb2

    forged = f"{stack.token('mno').rsplit('_', 1)[0]}_{'A' * 43}"
    callers = [stack.client("mno"), stack.client("mvno-alpha", "csr"), stack.client(token=forged), stack.client("mno")]
    for _ in range(3):
        seen = []
        for c in callers:
            try:
                me = c.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest()).token
                seen.append((me.tenant_id, me.role))
            except grpc.RpcError as exc:
                seen.append(exc.code())
        assert seen == [("mno", token_pb2.ROLE_OPERATOR_ADMIN), ("mvno-alpha", token_pb2.ROLE_CSR),
                        grpc.StatusCode.UNAUTHENTICATED, ("mno", token_pb2.ROLE_OPERATOR_ADMIN)]
    # and the guard really is the method's: the interceptor hands out the same one while the server's handler is the same
    from servers.interceptors import AuthAndErrorsInterceptor

    interceptor = AuthAndErrorsInterceptor(stack.root.tokens)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    other = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = type("Details", (), {"method": "/billing.v1.TokenService/WhoAmI", "invocation_metadata": ()})()
    first = interceptor.intercept_service(lambda _d: handler, details)
    assert first is not handler and interceptor.intercept_service(lambda _d: handler, details) is first
    assert interceptor.intercept_service(lambda _d: other, details) is not first   # a handler registered anew: its own guard
