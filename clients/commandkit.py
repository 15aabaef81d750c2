"""Shared bits for CLI command modules (clients/commands/*.py)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from clients.client import RulebillClient, connect


# where a client command connects and with what token, as clients.client.find_server / find_token look them up
SERVER_HELP = ("host:port (default: RULEBILL_SERVER, else the server_address setting, which defaults to listen_address, "
               "127.0.0.1:50051); over TLS when the tls_ca_file setting is set")
TOKEN_HELP = "bearer token (default: RULEBILL_TOKEN or the bootstrap credential file)"


def client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help=SERVER_HELP)
    p.add_argument("--token", help=TOKEN_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--page-token", default="")


def client_from(args: argparse.Namespace) -> RulebillClient:
    return connect(getattr(args, "server", None), getattr(args, "token", None))


class Progress:
    """Progress of long work on stderr: on a terminal a bar redrawn in place; anywhere else (a log file, a pipe) a
    plain line at 0 % and at each further tenth, so logs get a few readable lines and no carriage returns."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "") -> None:
        self.label, self.stream, self.unit = label, stream or sys.stderr, unit
        self.tty = self.stream.isatty()
        self.shown = -1
        self.ended = False

    def __call__(self, done: int, total: int) -> None:
        if not total or self.ended:
            return
        percent = min(100, max(0, done) * 100 // total)
        step = percent if self.tty else percent // 10 * 10
        if step == self.shown:
            return
        self.shown = step
        amount = f"{_scaled(done, self.unit)}/{_scaled(total, self.unit)}"
        if self.tty:
            filled = percent * 30 // 100
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {amount} {percent:3d}%")
        else:
            self.stream.write(f"{self.label}: {amount} ({percent}%)\n")
        if done >= total:
            self.finish()
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line on a terminal (after the work, or when it stopped early)."""
        if self.tty and self.shown >= 0 and not self.ended:
            self.stream.write("\n")
            self.stream.flush()
        self.ended = True


def _scaled(n: int, unit: str) -> str:
    return f"{n >> 20} MiB" if unit == "bytes" and n >= 1 << 20 else (f"{n} B" if unit == "bytes" else str(n))
