"""Every request message of every RPC of every registered service, fuzzed against a real server over a real
port (issue #13 item 13): random and extreme field values never give INTERNAL or UNKNOWN, and the server
stays healthy.  The RPCs come from the registered services' descriptors, so a service added later is fuzzed
without editing this file.  ``RULEBILL_FUZZ_EXAMPLES=300`` runs a longer hunt than ``make test``'s 12 examples per RPC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.v1 import token_pb2
from engine.plans.loader import plan_files
from tests.integration.billing_support import account_pb
from tests.integration.proto_fuzz import requests
from tests.integration.rpc_catalogue import Rpc, call, every_registered_rpc

pytestmark = pytest.mark.integration

# the codes a careless or hostile request may earn; INTERNAL and UNKNOWN say the server did not expect it
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
EXAMPLES = int(os.environ.get("RULEBILL_FUZZ_EXAMPLES", "12"))   # per RPC and database: about 50 RPCs x 2 databases run in well under a minute
CALLERS = ("mno", "mvno-alpha", "mvno-beta/csr")


RPCS = every_registered_rpc()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def world(stack: Any) -> None:
    """Objects the fuzzed requests can name (the sample strings of proto_fuzz), so calls get past "not found" into
    the desks: the sample plan set active for the operator, an alpha subscriber, a few alpha vouchers, an alpha
    billing account holding the subscriber."""
    mno, alpha = stack.client("mno"), stack.client("mvno-alpha")
    version = mno.plans.upload(plan_files(REPO / "plans"))
    mno.plans.activate(version.version)
    alpha.subscribers.provision("+33612345678", "208150000000001", "ACC-1", "TP_ALPHA_SIMPLE")
    alpha.vouchers.generate_batch("vp-alpha-eur-10", 3)
    account = alpha.billing.create_account(account_pb("ACC-1"))
    alpha.billing.assign(account.account_id, alpha.subscribers.get(msisdn="+33612345678").subscriber_id)


def _call(stack: Any, rpc: Rpc, request: Any, caller: str) -> grpc.StatusCode:
    tenant, _, role = caller.partition("/")
    metadata = [("authorization", f"Bearer {stack.token(tenant, role)}")]
    # a stream of a few copies for client streams (MediateFile: the header, then data)
    with grpc.insecure_channel(stack.address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        try:
            if rpc.client_streaming:
                stream = [request] * 2
                ser, de = rpc.request_class.SerializeToString, rpc.response_class.FromString
                if rpc.server_streaming:
                    list(channel.stream_stream(rpc.path, ser, de)(iter(stream), metadata=metadata, timeout=30))
                else:
                    channel.stream_unary(rpc.path, ser, de)(iter(stream), metadata=metadata, timeout=30)
            else:
                call(channel, rpc, request, metadata=metadata, timeout=30)
        except grpc.RpcError as err:
            assert err.code() not in NEVER, f"{rpc.path} as {caller}: {err.code().name}: {err.details()}\n{_short(request)}"
            assert len(err.details() or "") <= 1100, f"{rpc.path}: a {len(err.details() or '')}-character message"
            return err.code()
    return grpc.StatusCode.OK


def _short(request: Any) -> str:
    text = str(request)
    return text if len(text) < 2000 else text[:2000] + f"... ({len(text)} characters)"


@pytest.mark.parametrize("rpc", RPCS, ids=[f"{r.service.split('.')[-1]}.{r.name}" for r in RPCS])
def test_no_request_gets_internal_or_unknown(stack: Any, rpc: Rpc) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
    @given(request=requests(rpc.request_class), caller=st.sampled_from(CALLERS))
    def probe(request: Any, caller: str) -> None:
        _call(stack, rpc, request, caller)

    probe()
    _assert_healthy(stack)


def test_the_fuzz_covers_every_registered_rpc() -> None:
    from billing.v1 import plan_pb2, voucher_pb2

    names = {f"{r.service.split('.')[-1]}.{r.name}" for r in RPCS}
    assert len(RPCS) >= 45 and {"PlanService.UploadPlanSet", "MediationService.MediateFile", "VoucherService.Redeem"} <= names
    for proto in (plan_pb2, voucher_pb2, token_pb2):
        for service in proto.DESCRIPTOR.services_by_name.values():
            assert {f"{service.name}.{m.name}" for m in service.methods} <= names


def _assert_healthy(stack: Any) -> None:
    with grpc.insecure_channel(stack.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert stack.client("mno").tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest(), timeout=10).token.tenant_id == "mno"


@settings(max_examples=EXAMPLES * 4, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rpc=st.sampled_from(RPCS), data=st.one_of(st.binary(max_size=64), st.sampled_from([b"\xff" * 9, b"\x0a\x02\xc3\x28",
                                                                                      b"\x12\x80\x80\x80\x80\x10"])))
def test_bytes_that_are_no_message_get_invalid_argument(stack: Any, rpc: Rpc, data: bytes) -> None:
    """A request that does not parse (bad UTF-8 in a string, a truncated field, a wrong wire type) is the client's
    error: INVALID_ARGUMENT, where grpc alone would answer INTERNAL."""
    metadata = [("authorization", f"Bearer {stack.token('mno')}")]
    with grpc.insecure_channel(stack.address) as channel:
        raw = rpc.request_class.FromString
        try:
            raw(data)
            return   # it parses: the typed fuzz above covers it
        except Exception:  # noqa: BLE001
            pass
        identity = lambda b: b  # noqa: E731 - send the bytes as they are, read the reply as bytes
        try:
            if rpc.client_streaming and rpc.server_streaming:
                list(channel.stream_stream(rpc.path, identity, identity)(iter([data]), metadata=metadata, timeout=30))
            elif rpc.client_streaming:
                channel.stream_unary(rpc.path, identity, identity)(iter([data]), metadata=metadata, timeout=30)
            elif rpc.server_streaming:
                list(channel.unary_stream(rpc.path, identity, identity)(data, metadata=metadata, timeout=30))
            else:
                channel.unary_unary(rpc.path, identity, identity)(data, metadata=metadata, timeout=30)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{rpc.path}: {err.code().name}: {err.details()}"
            return
        raise AssertionError(f"{rpc.path} accepted bytes that are no {rpc.request_class.__name__}")
