"""SIGTERM on a real `rulebill serve` process (issue #13 item 5): health says NOT_SERVING during the drain (not
UNAVAILABLE), new calls are refused, a call still running when the grace period ends is cancelled, and the
process exits: the grace period is a hard limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

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


def _health(address: str) -> int | None:
    """The server's overall health, None when it does not answer."""
    try:
        with grpc.insecure_channel(address) as channel:
            return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status)
    except grpc.RpcError:
        return None


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
    try:
        for _ in range(300):
            if _health(address) == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.1)
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
        statuses = []
        for _ in range(200):   # until the signal is handled; the server keeps answering health meanwhile
            statuses.append(_health(address))
            if statuses[-1] != health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.02)
        assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, statuses
        with pytest.raises(grpc.RpcError) as refused:
            client.tokens.rpc.WhoAmI(token_pb2.WhoAmIRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in (refused.value.details() or "")
        out, _ = proc.communicate(timeout=60)   # the grace period, then the process is gone
        caller.join(30)
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert outcome.get("code") in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), outcome
    assert f"grace period of {GRACE}s over: cancelling 1 call(s) still running" in out, out
    assert "MediateFile by mno/bootstrap-admin: CANCELLED" in out and "stopped" in out
    assert "start-up heap: " in out   # set aside from the collector's full collections before serving
