"""How calls end, as the server sees them (issue #13 items 5 and 19).

* Long RPCs stop computing when the client goes away or its deadline passes: the access log records the call
  ending CANCELLED / DEADLINE_EXCEEDED (raised at a checkpoint of the work), not OK (the work ran to its end
  for nobody).  Nothing half-done stays behind.
* The access log has one line per call, streaming ones included: method, tenant/subject, status code, duration;
  never the bearer token, never a PIN.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import rating_pb2 as rpb
from billing.v1 import tenant_pb2
from billing.v1 import voucher_pb2 as vpb
from engine.cancellation import CallScope, current
from engine.plans.loader import plan_files
from engine.vouchers.desk import VoucherDesk

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<method>/\S+) by (?P<who>\S+): (?P<code>[A-Z_]+)(?P<gone> \(the client had gone\))? in (?P<ms>[0-9.]+) ms$")


class AccessLog(logging.Handler):
    """The access-log lines of the server running in this process, with a way to wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            if record.name == "rulebill.access":
                self.lines.append(record.getMessage())
            self._changed.notify_all()

    def wait_for(self, method: str, after: int = 0, timeout: float = 120) -> re.Match[str]:
        """The first line of ``method`` logged after the first ``after`` lines (the call has ended by then)."""
        def found() -> re.Match[str] | None:
            for line in self.lines[after:]:
                m = LINE.match(line)
                if m and m["method"].endswith(f"/{method}"):
                    return m
            return None

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, timeout), f"no access-log line for {method}: {self.lines[after:]}"
            got = found()
            assert got is not None
            return got


@pytest.fixture
def access() -> Iterator[AccessLog]:
    handler = AccessLog()
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)   # every logger of the server, at every level: what a verbose deployment would write
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture(scope="module")
def active(stack: Any) -> int:
    mno = stack.client("mno")
    version = mno.plans.upload(plan_files(REPO / "plans")).version
    mno.plans.activate(version)
    return version


def _stamp(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


def _refused(fn: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code()


class Deadlines:
    """When a server call's deadline passes, decided by the test instead of by the machine's speed.

    The server carries a client's deadline into the call's scope (servers/interceptors.py), and each checkpoint of the
    work compares it with the scope's clock.  Here, at the first checkpoint of a call that has one, that deadline is
    moved to a moment already past: the work stops at that checkpoint however fast or slow the machine is (a 50 ms
    deadline on a loaded machine could pass before the server even started the call, or a fast machine finish the
    work first), and the client's own deadline (``FAR``) never fires.  ``left`` keeps the seconds each such call
    still had when its deadline was moved: the client's deadline had reached the call."""

    def __init__(self, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left: list[float] = []
        self._calls: set[CallScope] = set()   # the scopes of the server's calls (not the limits opened inside them)
        calls, add, check = stack.root.health.calls, stack.root.health.calls.add, CallScope.check

        def added(scope: CallScope) -> None:
            self._calls.add(scope)
            add(scope)

        def checked(scope: CallScope) -> None:
            left = scope.remaining() if scope in self._calls else None
            if left is not None and left < 2 * FAR:   # grpc gives a call without a deadline one 292 billion years away
                self._calls.discard(scope)
                self.left.append(left)
                scope.deadline = (scope.deadline or 0.0) - left - 1.0   # a second ago
            check(scope)

        monkeypatch.setattr(calls, "add", added)
        monkeypatch.setattr(CallScope, "check", checked)


# a client deadline that never passes while a test runs: the call's end is the moved deadline (Deadlines); the server
# may see a little more than it (grpc rounds the deadline up as it carries it)
FAR = 600.0


@pytest.fixture
def deadlines(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Deadlines:
    return Deadlines(stack, monkeypatch)


def test_validation_stops_when_the_deadline_passes(stack: Any, access: AccessLog, deadlines: Deadlines) -> None:
    many = "kind: rate\n" + "".join(f"k{i}: {i}\n" for i in range(9_000))   # under the value budget: parsed in full
    plans = stack.client("mno").plans
    request = ppb.ValidatePlanSetRequest(files=[ppb.PlanFile(path="rates/many.yaml", content=many)])
    full = plans.rpc.ValidatePlanSet(request)   # no deadline: the work runs to its end
    assert not full.valid and access.wait_for("ValidatePlanSet")["code"] == "OK" and deadlines.left == []
    seen = len(access.lines)
    code = _refused(lambda: plans.rpc.ValidatePlanSet(request, timeout=FAR))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert access.wait_for("ValidatePlanSet", seen)["code"] == "DEADLINE_EXCEEDED"
    assert len(deadlines.left) == 1 and 0 < deadlines.left[0] < 2 * FAR, deadlines.left


def test_what_if_stops_when_the_deadline_passes(stack: Any, active: int, access: AccessLog, deadlines: Deadlines) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
    cdrs = [mpb.NormalisedCdr(source="it", origin_id=str(i), service=mpb.CDR_SERVICE_KIND_VOICE, start_time=_stamp(start),
                              a_number="33614000001", b_number="33612999999", duration_seconds=60) for i in range(2_000)]
    request = ppb.WhatIfRequest(candidate_version=active, cdrs=cdrs, default_tariff_plan="TP_SMART_M")
    seen = len(access.lines)
    assert _refused(lambda: stack.client("mno").plans.rpc.WhatIf(request, timeout=FAR)) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert access.wait_for("WhatIf", seen)["code"] == "DEADLINE_EXCEEDED"
    assert len(deadlines.left) == 1 and 0 < deadlines.left[0] < 2 * FAR, deadlines.left


def test_a_generation_stops_and_leaves_no_batch_when_its_call_ends_early(stack: Any, access: AccessLog,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The client goes away once the first chunk is made.  A passing deadline ends the call the same way on the server
    (grpc runs the call's callbacks: the scope's cancel, then the progress stream's), but its moment cannot be set by the
    test (GenerateBatch has no checkpoint of the scope's deadline, only the stream's callback); so the generation is
    held after its first chunk until the server has learned that the call ended, and cannot finish first however fast
    the machine is."""
    vouchers = stack.client("mno").vouchers
    before = len(vouchers.list_batches(page_size=1000).items)
    generation: list[CallScope] = []
    ended = threading.Event()
    cancel, generate = CallScope.cancel, VoucherDesk.generate_batch

    def cancelled(scope: CallScope) -> None:
        cancel(scope)
        if scope in generation:
            ended.set()

    def held(desk: VoucherDesk, principal: Any, request: Any, progress: Any = None) -> Any:
        generation.append(current())   # the call's scope: the worker runs in the call's context

        def first_then_held(done: int, total: int) -> None:
            progress(done, total)
            assert ended.wait(120), "the server learned that the call ended"

        return generate(desk, principal, request, first_then_held)

    monkeypatch.setattr(CallScope, "cancel", cancelled)
    monkeypatch.setattr(VoucherDesk, "generate_batch", held)
    seen = len(access.lines)
    replies = vouchers.rpc.GenerateBatch(vpb.GenerateBatchRequest(profile_id="vp-mno-eur-10", count=300_000), timeout=FAR)
    first = next(replies)
    assert first.WhichOneof("event") == "progress" and first.progress.total == 300_000, first
    replies.cancel()
    assert access.wait_for("GenerateBatch", seen)["code"] == "CANCELLED"
    assert ended.is_set() and len(vouchers.list_batches(page_size=1000).items) == before


def test_a_rating_stream_stops_when_the_client_cancels(stack: Any, active: int, access: AccessLog) -> None:
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=1)
    chunk = rpb.RateCdrsRequest(cdrs=[mpb.NormalisedCdr(source="it", origin_id=str(i), service=mpb.CDR_SERVICE_KIND_VOICE,
                                                        start_time=_stamp(start), a_number="33614000001", b_number="33612999999",
                                                        duration_seconds=60) for i in range(100)],
                                options=rpb.RateOptions(tariff_plan="TP_SMART_M"))
    stop = threading.Event()

    def endless() -> Iterator[rpb.RateCdrsRequest]:
        while not stop.is_set():
            yield chunk

    seen = len(access.lines)
    replies = stack.client("mno").rating.rpc.RateCdrs(endless())
    got = [next(replies), next(replies)]
    assert all(len(r.rated) == 100 for r in got)
    replies.cancel()
    stop.set()
    assert access.wait_for("RateCdrs", seen)["code"] == "CANCELLED"


def test_every_call_is_in_the_access_log_with_its_code_and_never_a_secret(stack: Any, access: AccessLog) -> None:
    bearer = stack.token("mvno-alpha")
    alpha = stack.client(token=bearer)
    seen = len(access.lines)
    alpha.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id="mvno-alpha"))
    # another MVNO's tenant is answered as a missing one (README, Errors: its existence is never disclosed)
    assert _refused(lambda: alpha.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id="mvno-beta"))) == grpc.StatusCode.NOT_FOUND
    assert _refused(lambda: stack.client(token="rbt_nope_nope").tenants.rpc.ListTenants(tenant_pb2.ListTenantsRequest())) == \
        grpc.StatusCode.UNAUTHENTICATED
    batch = alpha.vouchers.generate_batch("vp-alpha-eur-10", 5)   # a streaming call
    pin = "4917012345678901"
    assert _refused(lambda: alpha.vouchers.redeem("+33612345678", pin, "log-redeem")) != grpc.StatusCode.OK
    ends = {m["method"].rsplit("/", 1)[1]: m for m in (LINE.match(x) for x in access.lines[seen:]) if m}
    lines = [m for m in (LINE.match(x) for x in access.lines[seen:]) if m]
    assert [(m["method"], m["who"], m["code"]) for m in lines[:3]] == [
        ("/billing.v1.TenantService/GetTenant", "mvno-alpha/test-mvno-alpha-mvno_admin", "OK"),
        ("/billing.v1.TenantService/GetTenant", "mvno-alpha/test-mvno-alpha-mvno_admin", "NOT_FOUND"),
        ("/billing.v1.TenantService/ListTenants", "-", "UNAUTHENTICATED")]
    assert ends["GenerateBatch"]["code"] == "OK" and ends["Redeem"]["code"] != "OK" and batch.count == 5
    assert all(float(m["ms"]) >= 0 for m in lines)
    everything = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in access.records)
    secret = bearer.split("_", 2)[2]
    assert secret not in everything and bearer not in everything and "rbt_nope_nope" not in everything
    assert pin not in everything and pin[:12] not in everything
