"""One line and a non-zero exit for the command line's usual failures (issue 14, items 8 and 10): `serve` on a
database without its migrations or on a busy port, and a reader that leaves a pipe early."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from clients.cli import EXIT_BROKEN_PIPE
from store.migrate import current_heads, missing_migrations

REPO = Path(__file__).resolve().parents[2]
RULEBILL = [sys.executable, "-m", "servers.admin"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RULEBILL_")}
    return {**env, "RULEBILL_HOME": str(home), "PYTHONPATH": str(REPO), **extra}


def test_serve_refuses_an_unmigrated_database_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(RULEBILL + ["serve", "--listen", "127.0.0.1:0"], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not migrated" in lines[0] and "rulebill db upgrade" in lines[0] and "--migrate" in lines[0]
    url = f"sqlite:///{tmp_path / 'rulebill.db'}"
    assert current_heads(url) == set()  # refused before anything was built or written


def test_serve_migrate_applies_the_migrations_first(tmp_path: Path) -> None:
    """`serve --migrate` migrates, then stops at the next obstacle: a port in use (one line, exit 2)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = subprocess.run(RULEBILL + ["serve", "--migrate", "--listen", address], env=_env(tmp_path), capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert missing_migrations(f"sqlite:///{tmp_path / 'rulebill.db'}") == set()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"serve: cannot listen on {address} (Address already in use)")
    assert "Traceback" not in done.stderr


def test_a_closed_pipe_ends_quietly_without_a_traceback() -> None:
    """`rulebill tap3 decode FILE --json | head`: a reader that leaves early (here `true`, gone before the command
    has started writing) ends the command quietly: no BrokenPipeError traceback, exit 141 as after SIGPIPE."""
    command = f'"{sys.executable}" -m servers.admin tap3 decode samples/tap3/roaming.ber --json | true; echo "status ${{PIPESTATUS[0]}}" >&2'
    done = subprocess.run(["bash", "-c", command], cwd=REPO, env=_env(REPO / "var"), capture_output=True, text=True, timeout=60)
    assert done.stderr == f"status {EXIT_BROKEN_PIPE}\n"


def test_a_server_that_is_not_there_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nobody listens there
    done = subprocess.run(RULEBILL + ["tenants", "list", "--server", f"127.0.0.1:{port}", "--token", "rbt_x_y"],
                          env=_env(REPO / "var"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: UNAVAILABLE")
