"""The typed Python client: one client per service on one authenticated channel, each offering the
methods of the engine desk behind that service (the same port, over the wire).

    from clients.client import connect
    with connect() as rb:                      # address + token found like the CLI finds them
        for tenant in rb.tenants.list().items:
            print(tenant.tenant_id)
        rb.subscribers.set_barring("sub_...", "bar_international", True, reason="fraud")

Results are domain-shaped (:class:`~clients.services.base.Page`, iterators of chunks) or the typed protobuf
messages of ``billing.v1``; errors are ``grpc.RpcError`` (:func:`describe_error` makes one line of one).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any, Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.services.audit import AuditClient
from clients.services.billing import BillingClient
from clients.services.mediation import MediationClient
from clients.services.plans import PlanClient
from clients.services.rating import RatingClient
from clients.services.rerate import RerateClient
from clients.services.subscribers import SubscriberClient
from clients.services.tenants import TenantClient
from clients.services.tokens import TokenClient
from clients.services.vouchers import VoucherClient
from engine.settings import Settings, SettingsInvalid, load_settings
from engine.yamlio import Problem


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                         grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._md = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method, details.timeout, [*(details.metadata or ()), self._md], details.credentials,
            getattr(details, "wait_for_ready", None), getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


def find_server(explicit: str | None = None) -> str:
    return explicit or os.environ.get("RULEBILL_SERVER") or load_settings().effective_server_address


def find_token(explicit: str | None = None) -> str:
    """--token, then RULEBILL_TOKEN, then the bootstrap admin credential file that `make run` writes."""
    if explicit:
        return explicit
    if os.environ.get("RULEBILL_TOKEN"):
        return os.environ["RULEBILL_TOKEN"]
    path = load_settings().effective_bootstrap_token_file
    try:
        return Path(path).read_text().strip()
    except OSError:
        raise SystemExit(f"no credential: pass --token, set RULEBILL_TOKEN, or run `make run` to create {path}") from None


def client_tls(settings: Settings) -> tuple[bytes | None, tuple[bytes, bytes] | None]:
    """The CA of the server's certificate and this client's (key, certificate), read from the files the settings
    ``tls_ca_file``, ``tls_client_key_file`` and ``tls_client_cert_file`` name; (None, None) without ``tls_ca_file``
    (a plaintext channel).  A file that cannot be read, or a certificate without its key, raises
    :class:`SettingsInvalid` naming every such setting."""
    problems: list[Problem] = []

    def read(name: str) -> bytes:
        path = getattr(settings, name)
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            problems.append(Problem(name, 0, 0, "settings.file", f"cannot read {path}: {exc.strerror or exc}"))
            return b""

    cert_file, key_file = settings.tls_client_cert_file, settings.tls_client_key_file
    if bool(cert_file) != bool(key_file):
        missing = "tls_client_key_file" if cert_file else "tls_client_cert_file"
        problems.append(Problem(missing, 0, 0, "settings.missing", "tls_client_cert_file and tls_client_key_file go together (mTLS)"))
    if cert_file and not settings.tls_ca_file:
        problems.append(Problem("tls_ca_file", 0, 0, "settings.missing", "a client certificate is sent over TLS: set the CA of the server's certificate"))
    ca = read("tls_ca_file") if settings.tls_ca_file else None
    pair = (read("tls_client_key_file"), read("tls_client_cert_file")) if cert_file and key_file else None
    if problems:
        raise SettingsInvalid(problems)
    return ca, pair


def open_channel(address: str, root_certificates: bytes | None = None, client_cert: tuple[bytes, bytes] | None = None,
                 options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A TLS channel when ``root_certificates`` are given (with ``client_cert`` = (key, certificate) for mTLS),
    else a plaintext one."""
    if root_certificates is None:
        return grpc.insecure_channel(address, options=options)
    key, cert = client_cert if client_cert else (None, None)
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates, key, cert), options=options)


class RulebillClient:
    """Every service's client over one channel; use as a context manager."""

    def __init__(self, address: str, token: str, root_certificates: bytes | None = None,
                 client_cert: tuple[bytes, bytes] | None = None, max_message_bytes: int = 16 * 1024 * 1024) -> None:
        options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
        self._base = base = open_channel(address, root_certificates, client_cert, options)
        self.channel = grpc.intercept_channel(base, _BearerInterceptor(token))
        self.tenants = TenantClient(self.channel)
        self.subscribers = SubscriberClient(self.channel)
        self.tokens = TokenClient(self.channel)
        self.audit = AuditClient(self.channel)
        self.vouchers = VoucherClient(self.channel)
        self.plans = PlanClient(self.channel)
        self.rating = RatingClient(self.channel)
        self.mediation = MediationClient(self.channel)
        self.rerate = RerateClient(self.channel)
        self.billing = BillingClient(self.channel)

    def close(self) -> None:
        self._base.close()

    def __enter__(self) -> "RulebillClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(server: str | None = None, token: str | None = None) -> RulebillClient:
    """A client of the server found like the CLI finds it, over TLS when the ``tls_ca_file`` setting is set."""
    root_certificates, client_cert = client_tls(load_settings())
    return RulebillClient(find_server(server), find_token(token), root_certificates, client_cert)


def describe_error(err: grpc.RpcError) -> str:
    """One line: CODE: message (field: problem; ...)."""
    code = err.code().name if hasattr(err, "code") else "UNKNOWN"
    message = err.details() if hasattr(err, "details") else str(err)
    extra: list[str] = []
    status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                detail.Unpack(br)
                extra += [f"{v.field}: {v.description}" for v in br.field_violations]
    line = f"{code}: {message}"
    if extra and not all(e in (message or "") for e in extra):
        line += " (" + "; ".join(extra) + ")"
    return line
