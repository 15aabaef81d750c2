"""Shared bits for CLI command modules (clients/commands/*.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, Iterator, TextIO, TypeVar

from clients.client import RulebillClient, connect

T = TypeVar("T")


def client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help="host:port (default: RULEBILL_SERVER or 127.0.0.1:50051)")
    p.add_argument("--token", help="bearer token (default: RULEBILL_TOKEN or the bootstrap credential file)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--page-token", default="")


def client_from(args: argparse.Namespace) -> RulebillClient:
    return connect(getattr(args, "server", None), getattr(args, "token", None))


def progress(items: Iterable[T], total: int, label: str, stream: TextIO = sys.stderr) -> Iterator[T]:
    """A plain-text progress bar on stderr (only when stderr is a terminal or total is large)."""
    show = stream.isatty()
    done = 0
    for item in items:
        yield item
        done += 1
        if show and total and (done % max(1, total // 100) == 0 or done == total):
            filled = int(30 * done / total)
            stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            stream.flush()
    if show:
        stream.write("\n")


def bar(done: int, total: int, label: str, stream: TextIO = sys.stderr) -> None:
    """Draw one progress update (for streamed progress messages)."""
    if not total:
        return
    filled = int(30 * min(done, total) / total)
    end = "\n" if done >= total else ""
    stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}{end}")
    stream.flush()
