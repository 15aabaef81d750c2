"""The composition root: the one place that wires settings, store, engine and servicers.

``create_server`` is the server factory (returns ``(server, port)``); ``serve``
runs it until SIGTERM/SIGINT and shuts down gracefully.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.clock import Clock, SystemClock
from engine.identity import Role
from engine.operator import load_operator
from engine.plans.offer import OfferedPlans
from engine.settings import Settings
from engine.subscribers import SubscriberDesk
from engine.tenancy import TenantAdmin
from engine.tokens import TokenDesk
from servers import subscriber_service, tenant_service, token_service
from servers import voucher_service
from servers import mediation_service
from servers import plan_service, rating_service
from servers import billing_service
from servers.interceptors import AuthAndErrorsInterceptor
from store.db import make_engine
from store.uow import SqlUnitOfWorkFactory

log = logging.getLogger("rulebill.server")


@dataclass
class Root:
    """Everything a servicer may need, built once per process."""

    settings: Settings
    clock: Clock
    db: Any
    uow: SqlUnitOfWorkFactory
    tenants: TenantAdmin
    subscribers: SubscriberDesk
    tokens: TokenDesk
    # per-area parts added by their registrars (vouchers, plans, mediation ...)
    extras: dict[str, Any] = field(default_factory=dict)
    health: health.HealthServicer | None = None

    def close(self) -> None:
        self.db.dispose()
        if self.uow.read_engine is not None:
            self.uow.read_engine.dispose()


def build_root(settings: Settings, clock: Clock | None = None) -> Root:
    clock = clock or SystemClock()
    db = make_engine(settings.effective_database_url)
    read_db = make_engine(settings.effective_database_url, read_only=True) if db.dialect.name == "sqlite" else None
    uow = SqlUnitOfWorkFactory(db, read_db)
    root = Root(
        settings=settings,
        clock=clock,
        db=db,
        uow=uow,
        tenants=TenantAdmin(uow, clock),
        subscribers=SubscriberDesk(uow, clock),
        tokens=TokenDesk(uow, clock, settings.default_token_ttl_seconds),
    )
    # subscribers may only be put on tariff plans their tenant offers in the active plan set
    plan_desk, _ = plan_service.build_plans(root)

    def parent_of(tenant_id: str) -> str:
        with uow(read_only=True) as unit:
            tenant = unit.tenants.get(tenant_id)
        return tenant.parent_tenant_id if tenant is not None else ""

    root.subscribers = SubscriberDesk(uow, clock, OfferedPlans(plan_desk.compiled_at, parent_of, clock))
    return root


# Each registrar adds one service to the server and returns its full name.
# A new area adds its module's `register` here.
REGISTRARS: list[Callable[[grpc.Server, Root], str]] = [
    tenant_service.register,
    subscriber_service.register,
    token_service.register,
    token_service.register_audit,
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
    root.close()
    log.info("stopped")


def bootstrap(settings: Settings, root: Root | None = None, load_plans: bool = True, samples: bool = False) -> dict[str, Any]:
    """Seed a migrated database with the operator and MVNOs of ``plans/operator.yaml``, upload the plan set
    of ``plans/`` as the operator's and activate it now when no version is active yet, and write the
    bootstrap admin credential (0600) once. Safe to run again: existing objects are kept.

    ``load_plans=False`` skips the plan set (test fixtures that upload their own versions); ``samples=True`` (what
    `rulebill bootstrap` does) also provisions the sample billing accounts of plans/billing/samples.yaml."""
    own = root is None
    root = root or build_root(settings)

    def _bootstrap_plan_set(root: Root, settings: Settings, operator: Any) -> dict[str, Any]:
        # the operator's plan set from plans/ (the PlanService upload path), active now unless a version already is
        from engine.plans.catalogue import validate_files
        from engine.plans.compiler import build_ir, ir_digest
        from servers.plan_service import build_plans

        desk, plan_uow = build_plans(root)
        tenant = operator.tenant_id
        now = root.clock.now()
        with plan_uow() as uow:
            active = uow.plan_versions.active(tenant, now)
            latest = uow.plan_versions.get(tenant, uow.plan_versions.latest_number(tenant))
        if active is not None:
            return {"plan_set_version": active.version, "plan_set_activated": False}
        base = settings.plans_dir
        files = {p.relative_to(base).as_posix(): p.read_text(encoding="utf-8") for p in sorted(base.rglob("*"))
                 if p.is_file() and p.suffix in (".yaml", ".yml", ".prefixes") and p.name != "operator.yaml"
                 and p.relative_to(base).parts[0] not in ("vouchers", "billing")}
        plan_set, problems = validate_files(files)
        if plan_set is None:
            raise SystemExit("plans/ is invalid:\n" + "\n".join(str(p) for p in problems))
        if latest is not None and latest.activate_time is None and latest.digest == ir_digest(build_ir(plan_set)):
            version = latest  # uploaded by an earlier, interrupted bootstrap: activate it rather than upload again
        else:
            version = desk.upload(operator, tenant, files)
        desk.activate(operator, tenant, version.version, None)
        return {"plan_set_version": version.version, "plan_set_activated": True}

    try:
        seed, problems = load_operator(settings.plans_dir / "operator.yaml")
        if seed is None:
            raise SystemExit("\n".join(str(p) for p in problems))
        from engine.identity import SYSTEM
        from dataclasses import replace

        root.tenants.create_mno(seed.operator.tenant_id, seed.operator.display_name, seed.operator.currency)
        operator = replace(SYSTEM, tenant_id=seed.operator.tenant_id, subject="bootstrap")
        created = []
        for mvno in seed.mvnos:
            with root.uow() as uow:
                exists = uow.tenants.get(mvno.tenant_id) is not None
            if not exists:
                root.tenants.create_mvno(operator, mvno.tenant_id, mvno.display_name, mvno.currency)
                created.append(mvno.tenant_id)
        plan_set = _bootstrap_plan_set(root, settings, replace(SYSTEM, tenant_id=seed.operator.tenant_id, subject="bootstrap")) \
            if load_plans else {}
        keyring = settings.effective_keyring_file
        if not keyring.exists():
            from engine.vouchers.keyring import generate_keyring

            # the installation's voucher master and lookup keys (0600); back them up, never commit them
            generate_keyring(keyring)
        token_file = settings.effective_bootstrap_token_file
        wrote_token = False
        if not _token_still_valid(root, token_file):
            _, bearer = root.tokens.issue(None, "bootstrap-admin", seed.operator.tenant_id, Role.OPERATOR_ADMIN, 0)
            token_file.parent.mkdir(parents=True, exist_ok=True)
            write_secret_file(token_file, bearer + "\n")
            wrote_token = True
        extra: dict[str, Any] = {}
        if samples and load_plans:
            from servers.billing_samples import bootstrap_samples

            extra = bootstrap_samples(root)
        return {"operator": seed.operator.tenant_id, "mvnos_created": created, "token_file": str(token_file),
                "token_written": wrote_token, "keyring": str(keyring), **plan_set, **extra}
    finally:
        if own:
            root.close()


def _token_still_valid(root: Root, token_file: Any) -> bool:
    try:
        bearer = token_file.read_text().strip()
        root.tokens.authenticate(bearer)
        return True
    except Exception:  # noqa: BLE001 - missing, expired, revoked or foreign: issue a new one
        return False


def write_secret_file(path: Any, text: str) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
