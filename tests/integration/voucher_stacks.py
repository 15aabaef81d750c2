"""Servers with settings of their own (an injected clock, other rule files) for the voucher tests; the shared
``stack`` fixture of conftest.py serves everything else."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from engine.clock import Clock
from engine.settings import Settings
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import build_root
from tests.integration.conftest import Stack


@contextmanager
def running_stack(settings: Settings, clock: Clock | None = None) -> Iterator[Stack]:
    """A bootstrapped server (no plan set) on 127.0.0.1:0 over ``settings.database_url``, stopped afterwards."""
    root = build_root(settings, clock)
    bootstrap(settings, root, load_plans=False)
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    backend = "postgres" if settings.effective_database_url.startswith("postgresql") else "sqlite"
    s = Stack(root=root, server=server, address=f"127.0.0.1:{port}", backend=backend)
    try:
        yield s
    finally:
        for c in s._clients:
            c.close()
        graceful_stop(server, root, 1.0).wait()
        root.close()
