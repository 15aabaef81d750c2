"""SIGTERM on a real `rulebill serve` process (issue #13 item 5): health says NOT_SERVING during the drain (not
UNAVAILABLE), new calls are refused, a call still running when the grace period ends is cancelled, and the
process exits: the grace period is a hard limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import token_pb2
from clients.client import RulebillClient

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
GRACE = 2


def _admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servers.admin", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVING = health_pb2.HealthCheckResponse.SERVING


def _until(statuses: Iterator[health_pb2.HealthCheckResponse], done: Callable[[int], bool]) -> list[int]:
    """The statuses the server's health Watch stream sends, up to and including the first ``done`` accepts: each
    change is pushed by the server, so nothing here polls or sleeps."""
    seen: list[int] = []
    for reply in statuses:
        seen.append(int(reply.status))
        if done(seen[-1]):
            break
    return seen


def test_sigterm_drains_then_cancels_what_still_runs_and_exits(tmp_path: Path) -> None:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RULEBILL_HOME": str(tmp_path), "RULEBILL_DATABASE_URL": f"sqlite:///{tmp_path / 'rulebill.db'}",
           "RULEBILL_LISTEN_ADDRESS": address, "RULEBILL_SHUTDOWN_GRACE_SECONDS": str(GRACE)}
    env.pop("RULEBILL_TOKEN", None)
    assert _admin(env, "db", "upgrade").returncode == 0
    boot = _admin(env, "bootstrap")
    assert boot.returncode == 0, boot.stderr
    bearer = (tmp_path / "bootstrap-admin.token").read_text().strip()
    proc = subprocess.Popen([sys.executable, "-m", "servers.admin", "serve"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    outcome: dict[str, object] = {}
    upload_open = threading.Event()
    health_channel = grpc.insecure_channel(address)
    # the server's overall health as it changes; wait_for_ready: the call waits while the server is still starting
    watch = health_pb2_grpc.HealthStub(health_channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=120,
                                                             wait_for_ready=True)
    try:
        assert _until(watch, lambda status: status == SERVING)[-1] == SERVING
        client = RulebillClient(address, bearer)

        def upload() -> Iterator[mpb.MediateFileRequest]:
            # a file upload that never ends: the call stays in flight, its handler waiting for more bytes
            yield mpb.MediateFileRequest(header=mpb.MediateFileHeader(layout="asterisk", file_name="slow.csv", source="london-pbx"))
            upload_open.set()
            threading.Event().wait(120)

        def in_flight() -> None:
            try:
                outcome["reply"] = list(client.mediation.rpc.MediateFile(upload(), timeout=120))
            except grpc.RpcError as err:
                outcome["code"] = err.code()

        caller = threading.Thread(target=in_flight, daemon=True)
        caller.start()
        assert upload_open.wait(30)
        assert client.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest(), timeout=10).token.tenant_id == "mno"
        proc.send_signal(signal.SIGTERM)
        statuses = _until(watch, lambda status: status != SERVING)   # the drain's first step, pushed by the server
        watch.cancel()   # not a call the drain should wait for
        assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, statuses
        with pytest.raises(grpc.RpcError) as refused:
            client.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in (refused.value.details() or "")
        out, _ = proc.communicate(timeout=60)   # the grace period, then the process is gone
        caller.join(30)
        client.close()
    finally:
        watch.cancel()
        health_channel.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert outcome.get("code") in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), outcome
    assert f"grace period of {GRACE}s over: cancelling 1 call(s) still running" in out, out
    assert "MediateFile by mno/bootstrap-admin: CANCELLED" in out and "stopped" in out
    assert "start-up heap: " in out   # set aside from the collector's full collections before serving
