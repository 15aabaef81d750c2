"""The server: every service of the composition root on one gRPC server, and how it starts and stops.

``create_server`` is the server factory (returns ``(server, port)``); ``serve``
runs it until SIGTERM/SIGINT and shuts down gracefully.  What the servicers are
given is built in ``servers/root.py``.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.settings import Settings
from servers import (
    audit_service,
    billing_service,
    mediation_service,
    plan_service,
    rating_service,
    subscriber_service,
    tenant_service,
    token_service,
    voucher_service,
)
from servers.interceptors import AuthAndErrorsInterceptor
from servers.root import Root, build_root

log = logging.getLogger("rulebill.server")

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
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="rpc"),
        interceptors=[AuthAndErrorsInterceptor(root.tokens)],
        options=options,
    )
    names = [register(server, root) for register in REGISTRARS]
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    root.health = health_servicer
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    creds = _credentials(settings)
    target = address or settings.listen_address
    port = server.add_secure_port(target, creds) if creds else server.add_insecure_port(target)
    if port == 0:
        raise OSError(f"cannot listen on {target}")
    return server, port


def graceful_stop(server: grpc.Server, root: Root, grace: float) -> threading.Event:
    """Health goes NOT_SERVING first, then in-flight calls get ``grace`` seconds to finish."""
    if root.health is not None:
        root.health.enter_graceful_shutdown()
    return server.stop(grace)


def serve(settings: Settings) -> None:
    root = build_root(settings)
    server, port = create_server(root)
    server.start()
    scheduler = billing_service.start_scheduler(root)
    log.info("Rulebill serving gRPC on %s (port %d)", settings.listen_address, port)
    done = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: shutting down (grace %.0fs)", signum, settings.shutdown_grace_seconds)
        graceful_stop(server, root, settings.shutdown_grace_seconds).wait()
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    while not done.wait(0.5):
        pass
    if scheduler is not None:
        scheduler.set()
    root.close()
    log.info("stopped")
