"""Forged page tokens on every List RPC, over a real port on both databases: a token whose position is not one of the
list's (any JSON value of the wrong shape), or a token of another list, is INVALID_ARGUMENT naming ``page_token`` --
never INTERNAL from a store that could not compare it.  The List RPCs come from the registered services' descriptors
(every request with a ``page_token`` field), so a list added later must be named in ``KEYS`` below."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import field_violations
from tests.integration.rpc_catalogue import Rpc, call, every_registered_rpc

pytestmark = pytest.mark.integration

# each list's name in its tokens and the shape of its sort key: what the server must accept, all else it refuses
KEYS: dict[str, tuple[str, Any]] = {
    "TenantService.ListTenants": ("tenants", str),
    "RatingService.ListCreditAlerts": ("credit_alerts", int),
    "SubscriberService.ListSubscribers": ("subscribers", str),
    "AuditService.ListAuditEntries": ("audit", int),
    "PlanService.ListPlanSetVersions": ("plan_versions", int),
    "VoucherService.ListBatches": ("voucher_batches", str),
    "TokenService.ListTokens": ("tokens", str),
    "MediationService.ListRejects": ("rejects", int),
    "BillingService.ListAccounts": ("accounts", (str, str)),
    "BillingService.ListAddOns": ("add_ons", (str, str)),
    "BillingService.ListInvoices": ("invoices", (str, str)),
}
LISTS = [r for r in every_registered_rpc() if "page_token" in r.request_class.DESCRIPTOR.fields_by_name]
NAMES = [f"{r.service.split('.')[-1]}.{r.name}" for r in LISTS]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


def _token(body: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode("ascii")


def _fits(value: Any, shape: Any) -> bool:
    if isinstance(shape, tuple):
        return isinstance(value, list) and len(value) == len(shape) and all(_fits(v, s) for v, s in zip(value, shape))
    if shape is int:
        return type(value) is int and 0 <= value < 2**63
    return isinstance(value, str) and "\x00" not in value and len(value) <= 512


def _list(stack: Any, rpc: Rpc, token: str) -> grpc.RpcError | None:
    metadata = [("authorization", f"Bearer {stack.token('mno')}")]
    with grpc.insecure_channel(stack.address) as channel:
        try:
            call(channel, rpc, rpc.request_class(page_token=token), metadata=metadata)
        except grpc.RpcError as err:
            assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{rpc.path}: {err.code().name}: {err.details()}"
            return err
    return None


def _refused(stack: Any, rpc: Rpc, token: str) -> None:
    err = _list(stack, rpc, token)
    assert err is not None, f"{rpc.path} accepted the forged token {base64.urlsafe_b64decode(token)!r}"
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{rpc.path}: {err.code().name}: {err.details()}"
    assert "page_token" in field_violations(err)


def test_every_list_rpc_has_a_known_key() -> None:
    assert set(NAMES) == set(KEYS), "a List RPC without its token shape here (or one gone)"


@pytest.mark.parametrize("rpc", LISTS, ids=NAMES)
def test_a_forged_position_is_invalid_argument_on_page_token(stack: Any, rpc: Rpc) -> None:
    name, shape = KEYS[f"{rpc.service.split('.')[-1]}.{rpc.name}"]
    # the reviewer's token (no list), each wrong shape of the usual kinds, and positions past any column
    for after in (5, "x", ["a", "b"], [1, 2], None, True, 2**70, -1, "\x00", "\ud800", "x" * 600, {"a": 1}, ["a"], ["a", "b", "c"], [None, "b"]):
        if not _fits(after, shape):
            _refused(stack, rpc, _token({"after": after, "list": name}))
        _refused(stack, rpc, _token({"after": after}))

    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(after=JSON)
    def probe(after: Any) -> None:
        token = _token({"after": after, "list": name})
        if _fits(after, shape):
            _list(stack, rpc, token)   # a position of the right shape: any answer but INTERNAL
        else:
            _refused(stack, rpc, token)

    probe()


@pytest.mark.parametrize("rpc", LISTS, ids=NAMES)
def test_a_token_of_another_list_is_refused(stack: Any, rpc: Rpc) -> None:
    name, shape = KEYS[f"{rpc.service.split('.')[-1]}.{rpc.name}"]
    for other, (other_name, other_shape) in KEYS.items():
        if other_name != name:
            after = {str: "a", int: 1}.get(other_shape, ["a", "b"])
            _refused(stack, rpc, _token({"after": after, "list": other_name}))
