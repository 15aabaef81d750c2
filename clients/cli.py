"""The `rulebill` command line: client commands.

Client commands reach the server found by --server / RULEBILL_SERVER / the server_address setting
(default listen_address, 127.0.0.1:50051; over TLS with the tls_ca_file setting) with the token from
--token / RULEBILL_TOKEN / the bootstrap credential file, through the typed client (``clients/client.py``).
Each area's commands live in clients/commands/<area>.py.  The server-side
commands (serve, db upgrade, bootstrap, security-officer) are added by ``servers/admin.py``, which
is what the installed `rulebill` command runs; this package imports neither
``servers`` nor ``store``.

Every command's ``--help`` starts with its one-line description and ends with examples
(``clients/examples.py``); a command whose exit code says an outcome (1 for a barred call, a refused file, an invalid
plan ...) declares them with ``set_defaults(exit_codes={code: meaning})`` and its ``--help`` lists them under
"exit codes:".  Every error is one line on stderr and a non-zero exit: a gRPC error or
an unusable input exits 2; a closed output pipe (``rulebill ... | head``) ends the command quietly
with 141, as a Unix tool killed by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any, Callable, Iterable

import grpc

from clients.client import client_tls, describe_error, find_server, open_channel
from clients.commandkit import SERVER_HELP
from clients.examples import EXAMPLES
from engine.settings import SettingsInvalid, load_settings

# each module has register(subparsers); a new area adds its module name here
AREA_COMMANDS = ("tenants", "subscribers", "tokens", "plans", "replay", "mediate", "tap3", "vouchers", "rating", "rerate", "accounts", "bills", "invoices")

Registrar = Callable[[Any], None]
EXIT_ERROR = 2
# no connection: the usual causes, among them a TLS server reached without the client TLS settings (one line still)
UNAVAILABLE_HINT = ("is a server listening at that address? One that serves TLS needs the tls_ca_file setting, and "
                    "tls_client_cert_file with tls_client_key_file when it asks for a client certificate")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


def version() -> str:
    import importlib.metadata  # only for --version: looking the distribution up costs every other command time

    try:
        return importlib.metadata.version("rulebill")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"rulebill {version()}")
        parser.exit()


def cmd_health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = find_server(args.server)
    with open_channel(address, *client_tls(load_settings())) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(json.dumps({"server": address, "status": status}) if args.json else f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def build_parser(extra_commands: Iterable[Registrar] = ()) -> argparse.ArgumentParser:
    """The parser of every client command; ``extra_commands`` add more (the admin commands)."""
    parser = argparse.ArgumentParser(prog="rulebill", description="Rulebill billing platform: vouchers, postpaid and "
                                     "wholesale billing. `rulebill COMMAND --help` describes a command, with examples.")
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in extra_commands:
        register(sub)

    p = sub.add_parser("health", help="ask the server's standard health service")
    p.add_argument("--server", help=SERVER_HELP)
    p.add_argument("--service", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health, exit_codes={0: "the server is SERVING", 1: "it answered with another status"})

    for name in AREA_COMMANDS:
        importlib.import_module(f"clients.commands.{name}").register(sub)
    describe(parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str | None, argparse.ArgumentParser]]:
    """The direct subcommands of a parser: (name, one-line help, parser)."""
    out: list[tuple[str, str | None, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            out.extend((name, helps.get(name), child) for name, child in action.choices.items())
    return out


def describe(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every (sub)command's --help its one-line help as description and its examples as epilog."""
    for name, help_text, child in subcommands(parser):
        here = (*path, name)
        child.formatter_class = argparse.RawDescriptionHelpFormatter
        if help_text and not child.description:
            child.description = help_text[0].upper() + help_text[1:] + ("" if help_text.endswith(".") else ".")
        examples = EXAMPLES.get(" ".join(here)) or tuple(
            line for key, lines in EXAMPLES.items() if key.startswith(" ".join(here) + " ") for line in lines[:1])
        codes = child.get_default("exit_codes")
        epilog = ["exit codes:\n" + "\n".join(f"  {code}  {what}" for code, what in sorted(codes.items()))] if codes else []
        if examples:
            epilog.append("examples:\n" + "\n".join(f"  {line}" for line in examples))
        if epilog:
            child.epilog = "\n\n".join(epilog)
        describe(child, here)


def main(argv: list[str] | None = None, extra_commands: Iterable[Registrar] = ()) -> int:
    parser = build_parser(extra_commands)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a reader that left shows here, not at interpreter exit
        return code
    except grpc.RpcError as err:
        hint = f" ({UNAVAILABLE_HINT})" if err.code() == grpc.StatusCode.UNAVAILABLE else ""
        print(f"error: {describe_error(err)}{hint}", file=sys.stderr)
        return EXIT_ERROR
    except SettingsInvalid as err:
        print(f"error: {err}", file=sys.stderr)  # one line per problem: file:line:col: code: message
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader (`| head`) has what it wanted; nothing more can be written to it, not even at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except SystemExit as stop:
        if isinstance(stop.code, str):  # a command's own one-line refusal: `raise SystemExit("--amount: ...")`
            print(stop.code, file=sys.stderr)
            return EXIT_ERROR
        raise
    except OSError as err:  # a file the command reads or writes, or a port it listens on
        print(f"error: {err.strerror or err}" + (f": {err.filename}" if getattr(err, "filename", None) else ""), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
