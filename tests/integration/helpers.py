"""Assertions on gRPC errors with their rich details; a client that also hands out raw stubs (tests only)."""

from __future__ import annotations

import os
import random
import subprocess
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.client import RulebillClient
from engine.rating.usage import LEDGER_FIELDS

S = TypeVar("S")


class WireClient(RulebillClient):
    """The typed client plus raw generated stubs on its channel, for tests that speak the wire protocol
    themselves (unset enums, odd message sequences).  Product code (the CLI included) has the typed clients only."""

    def stub(self, stub_class: Callable[[grpc.Channel], S]) -> S:
        return stub_class(self.channel)


def rpc_error(fn: Callable[[], Any], code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        fn()
    assert err.value.code() == code, f"expected {code.name}, got {err.value.code().name}: {err.value.details()}"
    return err.value


def field_violations(err: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    assert status is not None, "INVALID_ARGUMENT must carry rich details"
    out: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            out.update({v.field: v.description for v in br.field_violations})
    return out


def precondition_reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("FAILED_PRECONDITION without ErrorInfo")


def audit_count(stack: Any) -> int:
    from engine.ports import AuditFilter

    with stack.root.uow() as uow:
        return len(uow.audit.list(AuditFilter(), None, 100000))


def wait_serving(address: str, proc: "subprocess.Popen[Any]", timeout: float) -> None:
    """A served process answers: its port accepts a channel, then the standard health check says SERVING (gRPC waits
    for the port and for the reply; nothing polls)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise AssertionError(f"the server did not come up on {address} (exit code {proc.poll()})") from None
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout, wait_for_ready=True)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def rating_stack_counting_chunks(db_url: str, home: Any, read_ahead: type, chunks: list[int], **settings: Any) -> Iterator[Any]:
    """A running server (tests.integration.conftest.running_stack, its clock fixed at MID_MONTH) whose RateCdrs reads
    its messages with ``read_ahead`` (a engine.readahead.ReadAhead) and appends the CDRs of each chunk it hands its
    RatingStream to ``chunks``; ``settings``: the Settings that differ (a group's bound, the message size)."""
    from pathlib import Path

    from engine.clock import FixedClock
    from engine.rating import desk, groups
    from engine.settings import Settings
    from tests.integration.conftest import MID_MONTH, running_stack

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(groups, "ReadAhead", read_ahead)
        rate_rows = desk.RatingStream.rate_rows

        def counted(self: Any, rows: Any, *args: Any) -> Any:
            chunks.append(len(rows))
            return rate_rows(self, rows, *args)

        mp.setattr(desk.RatingStream, "rate_rows", counted)
        with running_stack(Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0, **settings),
                           FixedClock(MID_MONTH)) as stack:
            yield stack


@contextmanager
def rating_resolver(desk: Any, use_c: bool) -> Iterator[None]:
    """The rating desk on its C resolver (``use_c``) or its Python one for the block, as it was afterwards; skipped
    when the C resolver asked for is not built."""
    if use_c and not desk.use_c:
        pytest.skip("built without the C resolver")
    was, desk.use_c = desk.use_c, use_c
    try:
        yield
    finally:
        desk.use_c = was


def ledger_entry(**values: Any) -> tuple[Any, ...]:
    """A usage-ledger row in LEDGER_FIELDS order: by default a rated voice CDR of 60 units that took 60 of bundle BN_V,
    ``values`` laid over (the ledger tests' rows, written through UsageRepo.write_chunk)."""
    row = dict(tenant_id="mno", cdr_id="c1", msisdn="4917000000001", cycle="2026-11", currency="EUR", charge_micros=1_000,
               bundles_json='[["BN_V", 60]]', start_time=None, service="voice", destination_group="DST_EU", zone="Z1", units=60,
               plan_set_version=1, tariff_plan="TP_A", plan_version=2, status="rated", reason="")
    row.update(values)
    return tuple(row[f] for f in LEDGER_FIELDS)


def until_lock_waits(db: Any, requests: int, ended: Callable[[], int], looks: int = 100_000) -> int:
    """How many backends of the test database wait for a lock, once every one of ``requests`` either waits for a lock
    or has ended (``ended()`` counts those): each look a fresh snapshot of PostgreSQL's activity, no clock and no
    sleep, so the race tests are ordered by the database's state, not by time. A request that neither waits nor ends
    within ``looks`` snapshots (tens of seconds) fails the test instead of hanging the suite."""
    from sqlalchemy import text

    waiting = 0
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for _ in range(looks):
            waiting = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                            "AND wait_event_type = 'Lock'")).scalar_one())
            if waiting + ended() >= requests:
                return waiting
    raise AssertionError(f"after {looks} looks at the database, {waiting} of {requests} requests wait for a lock and "
                         f"{ended()} have ended: the rest neither wait nor end")


def kill_points() -> random.Random:
    """The random source a SIGKILL test draws its kill points from, its seed printed (shown in a failure's report) and
    replayable: ``RULEBILL_TEST_KILL_SEED=<seed>`` draws the same points again."""
    seed = int(os.environ.get("RULEBILL_TEST_KILL_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"kill points drawn with seed {seed}: RULEBILL_TEST_KILL_SEED={seed} replays them")
    return random.Random(seed)
