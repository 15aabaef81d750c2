"""A database that goes away under a running server (issue #13 item 14): the auth interceptor's token lookup
fails, and the caller gets UNAVAILABLE (or INTERNAL) with a correlation id that the server log carries too,
never the SQL text or its parameters; health turns NOT_SERVING.  Broken for real: a throw-away PostgreSQL
stopped by its PID, an SQLite file (and its WAL) overwritten."""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.v1 import token_pb2
from clients.client import RulebillClient
from engine.settings import Settings
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import build_root
from store.migrate import upgrade

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CORRELATION = re.compile(r"correlation id ([0-9a-f]{16})")


def _throwaway_postgres(tmp_path: Path) -> dict[str, str]:
    """A PostgreSQL of this test's own (tests/postgres.sh), so that stopping it harms no other test."""
    out = tmp_path / "pg.env"
    # the answer goes through a file: the server started in the background keeps the shell's pipes open
    script = f"source {REPO / 'tests' / 'postgres.sh'}; pg_find_bin || exit 3; pg_start >/dev/null || {{ echo \"$PG_ERROR\" >&2; exit 4; }}; " \
             f"echo \"$PG_PID $PG_DIR $RULEBILL_TEST_POSTGRES_URL\" > {out}"
    with open(tmp_path / "pg.err", "w") as err:
        done = subprocess.run(["bash", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
    if done.returncode == 3:
        pytest.skip("no PostgreSQL server binaries here")
    assert done.returncode == 0, (tmp_path / "pg.err").read_text()
    pid, folder, url = out.read_text().split()
    return {"pid": pid, "dir": folder, "url": url}


def _stop(pid: int) -> None:
    """Kill the postmaster and wait for it to be gone.  tests/postgres.sh started it in the background of a shell that
    has exited, so it is no child of ours (no Popen to wait on): a pidfd of it becomes readable when it exits.  Waited
    on with poll(), not select(): select() refuses a descriptor numbered 1024 or more, which a test process that has
    run many modules may well hand out."""
    gone = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGQUIT)   # immediate shutdown, as a crash or an operator's kill would
        waiting = select.poll()
        waiting.register(gone, select.POLLIN)
        assert waiting.poll(30_000), f"PostgreSQL {pid} did not stop within 30 s"
    finally:
        os.close(gone)


def _serve(url: str, home: Path) -> Any:
    upgrade(url)
    settings = Settings(home=home, database_url=url, health_check_seconds=0)   # the test asks health itself
    root = build_root(settings)
    bootstrap(settings, root, load_plans=False)
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    return root, server, f"127.0.0.1:{port}", settings.effective_bootstrap_token_file.read_text().strip()


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status)


def _who_am_i(address: str, bearer: str) -> token_pb2.WhoAmIResponse:
    with RulebillClient(address, bearer) as rb:
        return rb.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest(), timeout=20)


@pytest.fixture
def errors_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog


def _assert_refused_without_detail(address: str, bearer: str, log: pytest.LogCaptureFixture) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        _who_am_i(address, bearer)
    code, details = err.value.code(), err.value.details() or ""
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL), (code, details)
    for leak in ("SELECT", "FROM", "api_token", "token_id", "[SQL", "parameters", "psycopg", "sqlite3"):
        assert leak not in details, details
    found = CORRELATION.search(details)
    assert found, details
    logged = [r for r in log.records if r.name == "rulebill.errors" and found.group(1) in r.getMessage()]
    assert logged, "the correlation id must be in the server log"
    assert bearer not in log.text
    return code


def test_postgres_stopped_under_a_running_server(tmp_path: Path, errors_log: pytest.LogCaptureFixture) -> None:
    pg = _throwaway_postgres(tmp_path)
    root = server = None
    try:
        root, server, address, bearer = _serve(pg["url"], tmp_path)
        assert _who_am_i(address, bearer).token.tenant_id == "mno"
        assert root.health is not None and root.health.check_database() and _health(address) == health_pb2.HealthCheckResponse.SERVING
        _stop(int(pg["pid"]))
        assert _assert_refused_without_detail(address, bearer, errors_log) == grpc.StatusCode.UNAVAILABLE
        assert _health(address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert root.health.check_database() is False
    finally:
        if server is not None and root is not None:
            graceful_stop(server, root, 0).wait(30)
            root.close()
        try:
            os.kill(int(pg["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(pg["dir"], ignore_errors=True)


def test_an_sqlite_file_made_unreadable_under_a_running_server(tmp_path: Path, errors_log: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "rulebill.db"
    root, server, address, bearer = _serve(f"sqlite:///{db}", tmp_path)
    try:
        assert _who_am_i(address, bearer).token.tenant_id == "mno"
        # the file, its write-ahead log and its index overwritten: what a disk fault or a careless copy leaves
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists():
                with open(path, "r+b") as fh:
                    fh.write(b"\xde\xad" * (path.stat().st_size // 2))
        _assert_refused_without_detail(address, bearer, errors_log)
        assert _health(address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert root.health is not None and root.health.check_database() is False
        assert _health(address) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        graceful_stop(server, root, 0).wait(30)
        root.close()


def test_a_closed_root_stops_asking_its_database(tmp_path: Path) -> None:
    """A server stopped without the drain (embedders, tests) and its root closed: the health monitor thread ends
    instead of probing a database that may be deleted next (it logged "database check failed" for gone files)."""
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    upgrade(url)
    root = build_root(Settings(home=tmp_path, database_url=url, health_check_seconds=3600))
    server, _port = create_server(root, "127.0.0.1:0")
    monitor = root.health._monitor if root.health is not None else None  # noqa: SLF001 - the thread under test
    assert monitor is not None and monitor.is_alive()
    server.stop(0).wait()
    root.close()
    monitor.join(timeout=30)   # woken by the stop event at once; the bound only keeps a regression from hanging
    assert not monitor.is_alive()


def test_stopping_a_server_is_waited_on_whatever_its_descriptor_number(tmp_path: Path) -> None:
    """_stop waits on a pidfd numbered past select()'s 1024 (a test process that has run many modules holds that many):
    here a process of our own, stopped the same way."""
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("fewer than 1,200 open files allowed here")
    held = []
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE)   # waits on its input until stopped
    try:
        while not held or held[-1] < 1100:   # the next descriptor opened (the pidfd) is numbered past 1024
            held.append(os.open(os.devnull, os.O_RDONLY))
        _stop(proc.pid)
        assert proc.wait(30) == -signal.SIGQUIT
    finally:
        for fd in held:
            os.close(fd)
        proc.kill()
        proc.communicate()
