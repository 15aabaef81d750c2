"""The `rulebill` command line: client commands.

Client commands reach the server found by --server / RULEBILL_SERVER / settings
(default 127.0.0.1:50051) with the token from --token / RULEBILL_TOKEN / the
bootstrap credential file, through the typed client (``clients/client.py``).
Each area's commands live in clients/commands/<area>.py.  The server-side
commands (serve, db upgrade, bootstrap) are added by ``servers/admin.py``, which
is what the installed `rulebill` command runs; this package imports neither
``servers`` nor ``store``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Callable, Iterable

import grpc

from clients.client import describe_error, find_server

# each module has register(subparsers); a new area adds its module name here
AREA_COMMANDS = ("tenants", "subscribers", "tokens", "plans", "replay", "mediate", "tap3", "vouchers", "rating", "rerate", "accounts", "bills", "invoices")

Registrar = Callable[[Any], None]


def cmd_health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = find_server(args.server)
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(json.dumps({"server": address, "status": status}) if args.json else f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def build_parser(extra_commands: Iterable[Registrar] = ()) -> argparse.ArgumentParser:
    """The parser of every client command; ``extra_commands`` add more (the admin commands)."""
    parser = argparse.ArgumentParser(prog="rulebill", description="Rulebill billing platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in extra_commands:
        register(sub)

    p = sub.add_parser("health", help="ask the server's standard health service")
    p.add_argument("--server")
    p.add_argument("--service", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)

    for name in AREA_COMMANDS:
        importlib.import_module(f"clients.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None, extra_commands: Iterable[Registrar] = ()) -> int:
    parser = build_parser(extra_commands)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except grpc.RpcError as err:
        print(f"error: {describe_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
