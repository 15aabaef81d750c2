"""One interceptor for every RPC: bearer-token authentication, the call's scope, error mapping, access log.

Health checking and reflection are the only unauthenticated services.  Every other call:

* runs inside a :class:`~engine.cancellation.CallScope` that ends when the client goes away, when its
  deadline passes or when a drain cancels it, so long work stops instead of computing for nobody;
* maps domain errors in one place (``servers/errors.py``); any other exception, including one raised
  while authenticating (the token lookup is a database query), reaches the caller as ``UNAVAILABLE`` or
  ``INTERNAL`` with a correlation id, never with its text;
* checks a stream's bearer again between its messages, the client's and the server's (every ``auth_cache_seconds``,
  on the token's expiry, and at once after a revocation or suspension through this process), so an open call does
  not outlive its token or its tenant;
* writes one access-log line when it ends, streaming calls included: method, tenant and subject of the
  caller (never the token), status code and duration.  Requests and their fields are never logged, so
  neither are PINs or other secrets in them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import grpc
from google.protobuf.message import Message

from engine.cancellation import CallScope, scope
from engine.errors import DomainError, InvalidArgument, Unauthenticated, Unavailable
from engine.identity import Principal
from engine.text import one_line
from engine.tokens import Checked, TokenDesk
from servers.context import reset_principal, set_principal
from servers.convert import Wired, text_violations
from servers.errors import abort, abort_unexpected, database_unreachable, grpc_code
from servers.health import ServerHealth

log = logging.getLogger("rulebill.access")

PUBLIC_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")


def _bearer(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, credential = str(value).partition(" ")
            if scheme.lower() != "bearer" or not credential:
                raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
            return credential.strip()
    raise Unauthenticated("missing authorization metadata: send 'authorization: Bearer <token>'")


class _Call:
    """One intercepted call: its scope, its caller once known, and how it ended (for the access log)."""

    def __init__(self, method: str, context: grpc.ServicerContext, health: ServerHealth | None) -> None:
        self.method, self.context, self.health = method, context, health
        self.started = time.perf_counter()
        remaining = context.time_remaining()
        self.scope = CallScope(None if remaining is None else time.monotonic() + remaining)
        self.principal: Principal | None = None
        self._bearer = ""
        self._checked: Checked | None = None
        self.code = "OK"
        context.add_callback(self.scope.cancel)   # the RPC ended: a client gone, a deadline passed, or done
        if health is not None:
            health.calls.add(self.scope)

    def enter(self, tokens: TokenDesk) -> Principal:
        if self.health is not None and self.health.draining:
            raise Unavailable("the server is shutting down; retry (another replica will answer)")
        self._bearer = _bearer(self.context)
        self._checked = tokens.check(self._bearer)
        self.principal = self._checked.principal
        return self.principal

    def recheck(self, tokens: TokenDesk) -> None:
        """Between two messages of a client stream: the bearer checked again when the cache's freshness has passed or
        the token or its tenant was forgotten (engine.tokens.TokenDesk.recheck); a revoked or expired token ends the
        call UNAUTHENTICATED, a suspended tenant PERMISSION_DENIED."""
        assert self._checked is not None
        self._checked = tokens.recheck(self._bearer, self._checked)

    def failed(self, exc: BaseException) -> None:
        """Map ``exc`` onto the call's status (this raises: the call is aborted)."""
        if isinstance(exc, DomainError):
            self.code = grpc_code(exc).name
            abort(self.context, exc)
        if isinstance(exc, grpc.RpcError) or self.context.code() is not None or self.scope.cancelled:
            # the request stream raised (the client left; the scope may learn it a moment later), aborted already by a
            # servicer, or the RPC is over: nothing to map
            self.code = _code_of(self.context, "CANCELLED")
            raise exc
        if database_unreachable(exc) and self.health is not None:
            self.health.database_unreachable()
        try:
            abort_unexpected(self.context, self.method, exc)
        finally:
            self.code = _code_of(self.context, "INTERNAL")

    def done(self) -> None:
        # the status the call ended with here: OK means the work ran to its end, even for a client that left meanwhile
        gone = " (the client had gone)" if self.code == "OK" and self.scope.cancelled else ""
        # the subject escaped: a token's subject stored before control characters were refused stays on one line
        who = one_line(f"{self.principal.tenant_id}/{self.principal.subject}") if self.principal is not None else "-"
        log.info("%s by %s: %s%s in %.1f ms", self.method, who, self.code, gone, (time.perf_counter() - self.started) * 1e3)
        if self.health is not None:   # last: a drain waiting for this call may end the process right after
            self.health.calls.remove(self.scope)


def _code_of(context: grpc.ServicerContext, default: str) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else default


class AuthAndErrorsInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenDesk, health: ServerHealth | None = None) -> None:
        self._tokens = tokens
        self._health = health
        # method -> (the server's handler, its guarded copy): a guard holds nothing of one call, so each method's is
        # built once instead of on every call (closures and a method handler each time, with the GIL held)
        self._guarded: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        method = details.method
        if handler is None or method.startswith(PUBLIC_SERVICES):
            return handler
        known = self._guarded.get(method)
        if known is None or known[0] is not handler:
            known = self._guarded[method] = (handler, _wrap(handler, method, self._tokens, self._health))
        return known[1]


class _Refused:
    """A request refused as it was read, as INVALID_ARGUMENT by the guard once the caller is authenticated: bytes that
    are not a valid message of the method (grpc would answer INTERNAL, "Exception deserializing request"), or text
    that no field may hold."""

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer``, refusing instead of raising; the NUL check (servers/convert.text_violations) looks at the
    bytes just read: only a request whose bytes hold a zero byte at all (most hold none) has its fields walked, and no
    request is serialized again for it."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            request = deserializer(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's malformed request
            return _Refused(InvalidArgument.field("request", f"not a valid message of this method: {type(exc).__name__}"))
        if b"\x00" in data:
            message = request.message if isinstance(request, Wired) else request
            violations = text_violations(message) if isinstance(message, Message) else []
            if violations:
                return _Refused(InvalidArgument("the request holds text no field may hold", violations))
        return request

    return deserialize


def _checked(request: Any) -> Any:
    """The request, unless it was refused as it was read (:func:`_lenient`)."""
    if isinstance(request, _Refused):
        raise request.error
    return request


def _checked_stream(requests: Iterator[Any], recheck: Callable[[], None]) -> Iterator[Any]:
    """A client stream's messages, each let through only while the caller's bearer still holds (``recheck``): a call
    open for hours does not outlive its token's revocation or expiry, nor its tenant's suspension."""
    for request in requests:
        recheck()
        yield _checked(request)


def _checked_replies(replies: Iterator[Any], recheck: Callable[[], None]) -> Iterator[Any]:
    """A server stream's messages, each sent only while the caller's bearer still holds (``recheck``,
    the client streams' rule): a bill run's progress or an export open for hours stops at its token's revocation or
    expiry, or its tenant's suspension, with nothing sent after it.  The servicer's generator is closed then, so its
    work stops at the message it was about to send (a bill run's batches committed before stay, as when a client
    leaves)."""
    try:
        for reply in replies:
            recheck()
            yield reply
    finally:
        close = getattr(replies, "close", None)
        if close is not None:
            close()


def _wrap(handler: grpc.RpcMethodHandler, method: str, tokens: TokenDesk, health: ServerHealth | None) -> grpc.RpcMethodHandler:
    def guard(behaviour: Callable[..., Any], streaming_response: bool, streaming_request: bool) -> Callable[..., Any]:
        def checked(request: Any, call: _Call) -> Any:
            return _checked_stream(request, lambda: call.recheck(tokens)) if streaming_request else _checked(request)

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            call = _Call(method, context, health)
            try:
                with scope(call.scope):
                    token = set_principal(call.enter(tokens))
                    try:
                        return behaviour(checked(request, call), context)
                    finally:
                        reset_principal(token)
            except Exception as exc:  # noqa: BLE001 - mapped in one place; the last line of defence
                call.failed(exc)
            finally:
                call.done()

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call = _Call(method, context, health)
            try:
                with scope(call.scope):
                    token = set_principal(call.enter(tokens))
                    try:
                        yield from _checked_replies(behaviour(checked(request, call), context), lambda: call.recheck(tokens))
                    finally:
                        reset_principal(token)
            except GeneratorExit:   # the client went away between two messages
                call.code = "CANCELLED"
                raise
            except Exception as exc:  # noqa: BLE001
                call.failed(exc)
            finally:
                call.done()

        return streaming if streaming_response else unary

    deserializer = _lenient(handler.request_deserializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary, False, False), deserializer,
                                                   handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream, True, False), deserializer,
                                                    handler.response_serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary, False, True), deserializer,
                                                    handler.response_serializer)
    return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream, True, True), deserializer,
                                                 handler.response_serializer)
