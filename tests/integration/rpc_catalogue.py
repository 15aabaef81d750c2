"""Every RPC the server exposes, discovered from the registered services' descriptors,
so that auth and error tests cover services added later without editing the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass


@dataclass(frozen=True)
class Rpc:
    service: str
    name: str
    path: str
    client_streaming: bool
    server_streaming: bool
    request_class: Any
    response_class: Any


def all_rpcs(service_names: list[str]) -> list[Rpc]:
    pool = descriptor_pool.Default()
    out: list[Rpc] = []
    for full in service_names:
        svc = pool.FindServiceByName(full)
        for m in svc.methods:
            out.append(
                Rpc(full, m.name, f"/{full}/{m.name}", m.client_streaming, m.server_streaming,
                    GetMessageClass(m.input_type), GetMessageClass(m.output_type))
            )
    return out


def call(channel: grpc.Channel, rpc: Rpc, request: Any = None, metadata: list[tuple[str, str]] | None = None,
         timeout: float = 10) -> Any:
    """Invoke any RPC with one (default empty) request; returns the response or list of responses."""
    request = request if request is not None else rpc.request_class()
    ser, de = rpc.request_class.SerializeToString, rpc.response_class.FromString
    md = metadata or []
    if rpc.client_streaming and rpc.server_streaming:
        return list(channel.stream_stream(rpc.path, ser, de)(iter([request]), metadata=md, timeout=timeout))
    if rpc.client_streaming:
        return channel.stream_unary(rpc.path, ser, de)(iter([request]), metadata=md, timeout=timeout)
    if rpc.server_streaming:
        return list(channel.unary_stream(rpc.path, ser, de)(request, metadata=md, timeout=timeout))
    return channel.unary_unary(rpc.path, ser, de)(request, metadata=md, timeout=timeout)


def registered_service_names(server_root: Any) -> list[str]:
    """The billing.v1 services this build registers (from the composition root)."""
    from servers.app import REGISTRARS

    class _Collect:
        def __init__(self) -> None:
            self.names: list[str] = []

        def add_generic_rpc_handlers(self, handlers: Any) -> None:
            for h in handlers:
                self.names.append(h.service_name())

        def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
            pass

    collector = _Collect()
    names: list[str] = []
    for register in REGISTRARS:
        names.append(register(collector, server_root))  # type: ignore[arg-type]
    return names


class RootStub:
    """Registering needs desks only to hand them to servicers, which keep them without calling them: a stand-in
    for the composition root that lets tests list the registered services without a database.  The settings are
    the defaults (a servicer reads its bounds from them: RatingService's rating_group_max_cdrs)."""

    def __getattr__(self, name: str) -> object:
        if name == "settings":
            from engine.settings import Settings

            return Settings()
        return RootStub()


def every_registered_rpc() -> list[Rpc]:
    """Every RPC of every service the server registers (no server, no database needed)."""
    return all_rpcs(registered_service_names(RootStub()))


def iter_names(rpcs: list[Rpc]) -> Iterator[str]:
    for r in rpcs:
        yield f"{r.service.split('.')[-1]}.{r.name}"
