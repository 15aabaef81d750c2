"""The server: every service of the composition root on one gRPC server, and how it starts and stops.

``create_server`` is the server factory (returns ``(server, port)``); ``serve``
runs it until SIGTERM/SIGINT, then drains (``graceful_stop``: health NOT_SERVING, the
grace period, then whatever still runs is cancelled) and exits; ``start_scheduler`` starts
billing's background work beside it (the bill runs' worker processes, the scheduler's
rounds).  What the servicers are given is built in ``servers/root.py``.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from concurrent import futures
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import text
from sqlalchemy.engine import Engine

from engine.billing.desk import BillingDesk
from engine.settings import Settings
from servers import (
    audit_service,
    billing_service,
    mediation_service,
    plan_service,
    rating_service,
    rerate_service,
    subscriber_service,
    tenant_service,
    token_service,
    voucher_service,
)
from servers.health import ServerHealth
from servers.interceptors import AuthAndErrorsInterceptor
from servers.root import Root, build_root

log = logging.getLogger("rulebill.server")
billing_log = logging.getLogger("rulebill.billing.server")
CANCEL_WAIT_SECONDS = 2.0   # after the grace period: how long cancelled calls get to unwind before the process goes

# Each registrar adds one service (its servicer, given the desks it needs from the root) and returns its full name.
# A new area adds its module's `register` here.
REGISTRARS: list[Callable[[grpc.Server, Root], str]] = [
    tenant_service.register,
    subscriber_service.register,
    token_service.register,
    audit_service.register,
    voucher_service.register,
    mediation_service.register,
    plan_service.register,
    rating_service.register,
    rerate_service.register,
    billing_service.register,
]


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert_file:
        return None
    with open(settings.tls_key_file, "rb") as k, open(settings.tls_cert_file, "rb") as c:
        pair = (k.read(), c.read())
    if settings.tls_client_ca_file:
        with open(settings.tls_client_ca_file, "rb") as ca:
            return grpc.ssl_server_credentials([pair], root_certificates=ca.read(), require_client_auth=True)
    return grpc.ssl_server_credentials([pair])


def create_server(root: Root, address: str | None = None) -> tuple[grpc.Server, int]:
    """Build (not start) a server on ``address`` (default: settings.listen_address); ``[::]:0`` picks a free port."""
    settings = root.settings
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    # asked through the read-only engine where there is one: a probe must never queue for SQLite's write lock
    server_health = ServerHealth(lambda: probe_database(root.uow.read_engine or root.db), settings.health_check_seconds)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=[AuthAndErrorsInterceptor(root.tokens, server_health)],
        options=options,
    )
    names = [register(server, root) for register in REGISTRARS]
    server_health.add_services(names)
    health_pb2_grpc.add_HealthServicer_to_server(server_health.servicer, server)
    root.health = server_health
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    creds = _credentials(settings)
    target = address or settings.listen_address
    port = server.add_secure_port(target, creds) if creds else server.add_insecure_port(target)
    if port == 0:
        raise OSError(f"cannot listen on {target}")
    server_health.start_monitor()
    return server, port


def probe_database(db: Engine) -> None:
    """Raise unless the database answers a query that reads it (``SELECT 1`` alone would not read an SQLite file)."""
    with db.connect() as conn:
        conn.execute(text("SELECT count(*) FROM alembic_version"))


def graceful_stop(server: grpc.Server, root: Root, grace: float) -> threading.Event:
    """Drain, then stop; returns an event set once the server has stopped.

    Health turns NOT_SERVING and new calls get UNAVAILABLE at once; the calls in flight get ``grace``
    seconds to finish; whatever still runs then is cancelled (its next checkpoint raises, its unit of
    work rolls back) and the server stops, grace being a hard limit."""
    stopped = threading.Event()
    health_state = root.health
    if health_state is not None:
        # before returning, not in the thread: a probe right after the signal must already see NOT_SERVING
        health_state.drain()

    def drain() -> None:
        if health_state is not None:
            if not health_state.calls.wait_until_idle(grace):
                log.warning("grace period of %gs over: cancelling %d call(s) still running", grace, health_state.calls.cancel_all())
            health_state.stop()
        server.stop(0).wait()
        # cancelled calls unwind at their next checkpoint (or as their request stream breaks): a moment for them to
        # roll back and log; one that does not is left behind, as the grace period is over
        if health_state is not None and not health_state.calls.wait_until_idle(CANCEL_WAIT_SECONDS):
            log.warning("%d call(s) did not stop after cancellation; stopping without them", len(health_state.calls))
        stopped.set()

    threading.Thread(target=drain, name="drain", daemon=True).start()
    return stopped


def freeze_startup_heap() -> int:
    """Take what start-up built (plans, rules, keys, descriptors, the ORM's tables: long-lived, hundreds of thousands of
    objects) out of the cyclic collector's reach, so that its full collections walk only what the calls leave behind:
    each one walked them all, about 80 ms of CPU with the GIL held, and every call waited meanwhile (docs/BENCHMARKS.md,
    redemption over gRPC).  Returns how many objects were set aside; those that die later are still freed by their
    reference counts (a cycle among them that dies is not)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def start_scheduler(root: Root) -> threading.Event | None:
    """Billing's background work as the server starts: the bill runs' worker processes started (PostgreSQL: each
    imports, builds its runner and compiles the plan sets now, not in the first large run;
    servers/adapters/bill_run_processes.py), and, when ``billing_scheduler_seconds`` is set, a daemon thread running
    the billing scheduler's rounds until the returned event is set (``serve`` sets it on shutdown)."""
    root.billing.runs.warm_workers()
    _drop_abandoned_stages(root.drop_abandoned_stages)   # a run killed before this start left its staged usage
    every = float(root.settings.billing_scheduler_seconds or 0)
    if every <= 0:
        return None
    stop = threading.Event()
    threading.Thread(target=_billing_scheduler, args=(root.billing, every, stop, root.drop_abandoned_stages), name="billing-scheduler",
                     daemon=True).start()
    return stop


def _drop_abandoned_stages(drop: Callable[[], list[str]]) -> None:
    try:
        drop()
    except Exception:  # noqa: BLE001 - housekeeping must neither stop the start nor the scheduler; the next round retries
        billing_log.exception("dropping abandoned bill run usage stages failed")


def _billing_scheduler(desk: BillingDesk, every: float, stop: threading.Event,
                       drop_stages: Callable[[], list[str]] = lambda: []) -> None:
    while not stop.wait(every):
        _drop_abandoned_stages(drop_stages)
        try:
            for run in desk.scheduler_tick():
                billing_log.info("scheduled bill run %s for %s: %d issued, %d empty, %d failed", run.run_id, run.tenant_id, run.issued,
                                 run.empty, run.failed)
        except Exception:  # noqa: BLE001 - the scheduler must outlive one bad round; the next round retries
            billing_log.exception("scheduled bill run failed")


def serve(settings: Settings) -> None:
    root = build_root(settings)
    server, port = create_server(root)
    log.info("start-up heap: %d objects set aside from the collector's full collections", freeze_startup_heap())
    server.start()
    scheduler = start_scheduler(root)
    log.info("Rulebill serving gRPC on %s (port %d)", settings.listen_address, port)
    signalled = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: shutting down: draining, then stopping (grace %gs)", signum, settings.shutdown_grace_seconds)
        signalled.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    while not signalled.wait(0.5):
        pass
    if scheduler is not None:
        scheduler.set()   # no new scheduled rounds while draining
    graceful_stop(server, root, settings.shutdown_grace_seconds).wait()
    root.close()
    log.info("stopped")
    # the grace period is a hard limit: a handler that has not noticed its cancellation (blocked in a driver
    # or a subprocess) must not keep the process alive, as the RPC worker threads would at interpreter exit
    logging.shutdown()
    os._exit(0)
