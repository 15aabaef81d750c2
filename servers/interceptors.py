"""One interceptor for every RPC: bearer-token authentication, domain-error mapping, access log.

Health checking and reflection are the only unauthenticated services.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import grpc

from engine.errors import DomainError, Unauthenticated
from engine.tokens import TokenDesk
from servers.context import reset_principal, set_principal
from servers.errors import abort, abort_internal

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


class AuthAndErrorsInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: TokenDesk) -> None:
        self._tokens = tokens

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        method = details.method
        if handler is None or method.startswith(PUBLIC_SERVICES):
            return handler
        return _wrap(handler, method, self._tokens)


def _wrap(handler: grpc.RpcMethodHandler, method: str, tokens: TokenDesk) -> grpc.RpcMethodHandler:
    def guard(behaviour: Callable[..., Any], streaming_response: bool) -> Callable[..., Any]:
        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                principal = tokens.authenticate(_bearer(context))
            except DomainError as exc:
                log.info("%s denied: %s", method, type(exc).__name__)
                abort(context, exc)
            token = set_principal(principal)
            try:
                return behaviour(request, context)
            except DomainError as exc:
                abort(context, exc)
            except grpc.RpcError:
                raise
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                if context.code() is not None:  # already aborted by the servicer
                    raise
                abort_internal(context, method, exc)
            finally:
                reset_principal(token)
                log.info("%s by %s/%s in %.1f ms", method, principal.tenant_id, principal.subject, (time.perf_counter() - started) * 1e3)

        def streaming(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                principal = tokens.authenticate(_bearer(context))
            except DomainError as exc:
                abort(context, exc)
            token = set_principal(principal)
            try:
                yield from behaviour(request, context)
            except DomainError as exc:
                abort(context, exc)
            except grpc.RpcError:
                raise
            except Exception as exc:  # noqa: BLE001
                if context.code() is not None:
                    raise
                abort_internal(context, method, exc)
            finally:
                reset_principal(token)

        return streaming if streaming_response else unary

    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            guard(handler.unary_unary, False), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            guard(handler.unary_stream, True), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            guard(handler.stream_unary, False), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        guard(handler.stream_stream, True), handler.request_deserializer, handler.response_serializer
    )
