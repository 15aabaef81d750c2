"""The server itself: limits, graceful shutdown, TLS/mTLS, the process under SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.v1 import subscriber_pb2, tenant_pb2
from clients.client import RulebillClient
from engine.settings import Settings
from servers import app
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import build_root
from tests.integration.helpers import rpc_error, wait_serving

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_oversized_messages_are_refused(stack) -> None:  # type: ignore[no-untyped-def]
    big = "x" * (stack.root.settings.max_message_bytes + 10)
    c = stack.client("mno")
    err = rpc_error(lambda: c.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id=big)), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert err is not None


def _slow_registrar(started: threading.Event, release: threading.Event):  # type: ignore[no-untyped-def]
    def slow(request: bytes, context: grpc.ServicerContext) -> bytes:
        started.set()
        release.wait(10)
        return b"done"

    def register(server, root) -> str:  # type: ignore[no-untyped-def]
        handler = grpc.method_handlers_generic_handler("test.Slow", {"Wait": grpc.unary_unary_rpc_method_handler(slow)})
        server.add_generic_rpc_handlers((handler,))
        return "test.Slow"

    return register


def test_graceful_shutdown_drains_in_flight_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    settings = Settings(home=tmp_path, database_url=url)
    root = build_root(settings)
    bootstrap(settings, root, load_plans=False)
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(app, "REGISTRARS", [*app.REGISTRARS, _slow_registrar(started, release)])
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    token = settings.effective_bootstrap_token_file.read_text().strip()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    slow = channel.unary_unary("/test.Slow/Wait")
    result: dict[str, object] = {}
    caller = threading.Thread(target=lambda: result.setdefault("reply", slow(b"", metadata=[("authorization", f"Bearer {token}")], timeout=20)))
    caller.start()
    assert started.wait(5)
    stopped = graceful_stop(server, root, 10)
    health = health_pb2_grpc.HealthStub(channel)
    # health says NOT_SERVING while the in-flight call is still running
    assert root.health is not None
    reply = root.health.servicer.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    release.set()
    caller.join(10)
    assert result.get("reply") == b"done"
    assert stopped.wait(10)
    with pytest.raises(grpc.RpcError):
        health.Check(health_pb2.HealthCheckRequest(), timeout=1)
    channel.close()
    root.close()


def _make_pki(tmp: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca")).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    out: dict[str, Path] = {}

    def leaf(cn: str, serial: int, san: bool) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject).public_key(key.public_key())
             .serial_number(serial).not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1)))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        (tmp / f"{cn}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (tmp / f"{cn}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[cn + ".key"], out[cn + ".crt"] = tmp / f"{cn}.key", tmp / f"{cn}.crt"

    (tmp / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out["ca.crt"] = tmp / "ca.crt"
    leaf("server", 2, True)
    leaf("client", 3, False)
    return out


@contextmanager
def _mtls_server(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """A bootstrapped server on localhost that serves TLS and asks for a client certificate: (port, admin token)."""
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    settings = Settings(home=tmp_path, database_url=url, tls_cert_file=str(pki["server.crt"]), tls_key_file=str(pki["server.key"]),
                        tls_client_ca_file=str(pki["ca.crt"]))
    root = build_root(settings)
    bootstrap(settings, root, load_plans=False)
    server, port = create_server(root, "localhost:0")
    server.start()
    try:
        yield port, settings.effective_bootstrap_token_file.read_text().strip()
    finally:
        server.stop(0).wait()
        root.close()


def test_mutual_tls_by_configuration(tmp_path: Path) -> None:
    pki = _make_pki(tmp_path)
    ca = pki["ca.crt"].read_bytes()
    with _mtls_server(tmp_path, pki) as (port, token):
        with RulebillClient(f"localhost:{port}", token, root_certificates=ca,
                            client_cert=(pki["client.key"].read_bytes(), pki["client.crt"].read_bytes())) as ok:
            assert ok.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id="mno")).tenant.tenant_id == "mno"
        with RulebillClient(f"localhost:{port}", token, root_certificates=ca) as no_cert:
            with pytest.raises(grpc.RpcError) as err:
                no_cert.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id="mno"), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with RulebillClient(f"localhost:{port}", token) as plaintext:
            with pytest.raises(grpc.RpcError):
                plaintext.tenants.rpc.GetTenant(tenant_pb2.GetTenantRequest(tenant_id="mno"), timeout=5)


def test_the_cli_reaches_a_tls_server_through_the_client_tls_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`rulebill health` and a client command over TLS with a client certificate, from the tls_ca_file,
    tls_client_cert_file and tls_client_key_file settings; without them, or with a file missing, a clear error."""
    from clients import cli

    pki = _make_pki(tmp_path)
    monkeypatch.setenv("RULEBILL_HOME", str(tmp_path / "client-home"))
    for name in ("RULEBILL_CONFIG", "RULEBILL_SERVER", "RULEBILL_TOKEN", "RULEBILL_TLS_CA_FILE", "RULEBILL_TLS_CLIENT_CERT_FILE",
                 "RULEBILL_TLS_CLIENT_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    with _mtls_server(tmp_path, pki) as (port, token):
        server = ["--server", f"localhost:{port}"]
        show = ["tenants", "show", "mno", *server, "--token", token, "--json"]

        def run(*argv: str) -> tuple[int, str, str]:
            code = cli.main([*argv])
            out, err = capsys.readouterr()
            return code, out, err

        # no TLS settings: a plaintext channel the server refuses; the one error line says which settings to set
        for argv in (["health", *server, "--timeout", "5"], show):
            code, _, err = run(*argv)
            assert code == cli.EXIT_ERROR and err.startswith("error: UNAVAILABLE") and "tls_ca_file" in err and err.count("\n") == 1, err

        monkeypatch.setenv("RULEBILL_TLS_CA_FILE", str(pki["ca.crt"]))
        code, _, err = run("health", *server, "--timeout", "5")   # TLS, but no client certificate for an mTLS server
        assert code == cli.EXIT_ERROR and "UNAVAILABLE" in err and "tls_client_cert_file" in err, err

        monkeypatch.setenv("RULEBILL_TLS_CLIENT_CERT_FILE", str(pki["client.crt"]))
        code, _, err = run("health", *server)                     # a certificate without its key
        assert code == cli.EXIT_ERROR and "tls_client_key_file: settings.missing" in err, err

        monkeypatch.setenv("RULEBILL_TLS_CLIENT_KEY_FILE", str(pki["client.key"]))
        assert run("health", *server, "--json")[:2] == (0, f'{{"server": "localhost:{port}", "status": "SERVING"}}\n')
        code, out, err = run(*show)
        assert code == 0 and json.loads(out)["tenant_id"] == "mno", err

        monkeypatch.setenv("RULEBILL_TLS_CA_FILE", str(tmp_path / "gone.crt"))
        for argv in (["health", *server], show):                   # a file that is not there: named, nothing sent
            code, _, err = run(*argv)
            assert code == cli.EXIT_ERROR and f"tls_ca_file: settings.file: cannot read {tmp_path / 'gone.crt'}" in err, err


def _rulebill(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servers.admin", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_cli_end_to_end_with_a_served_process_and_sigterm(tmp_path: Path, db_url: str) -> None:
    """`rulebill db upgrade`, `bootstrap`, `serve` as a real process; client commands find address and token
    without flags; SIGTERM stops it cleanly; its log writes each message on one line (servers/admin.py's
    OneLineFormatter), a newline in a logged value escaped."""
    port = _free_port()
    # the rules folder's path, logged as the server starts, carries a newline and what would be a forged line
    rules = tmp_path / "rules\nINFO rulebill.access: forged"
    shutil.copytree(REPO / "rules", rules)
    env = {**os.environ, "RULEBILL_HOME": str(tmp_path), "RULEBILL_DATABASE_URL": db_url,
           "RULEBILL_LISTEN_ADDRESS": f"127.0.0.1:{port}", "RULEBILL_TOKEN": "", "RULEBILL_RULES_DIR": str(rules)}
    env.pop("RULEBILL_TOKEN")
    assert _rulebill(env, "db", "upgrade").returncode == 0
    boot = _rulebill(env, "bootstrap")
    assert boot.returncode == 0, boot.stderr
    token_file = tmp_path / "bootstrap-admin.token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    proc = subprocess.Popen([sys.executable, "-m", "servers.admin", "serve"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_serving(f"127.0.0.1:{port}", proc, 60)
        health = _rulebill(env, "health", "--json")
        assert health.returncode == 0 and '"SERVING"' in health.stdout
        listed = _rulebill(env, "tenants", "list")
        assert listed.returncode == 0 and "mvno-alpha" in listed.stdout and "TENANT_ID" in listed.stdout
        made = _rulebill(env, "subscribers", "provision", "--tenant", "mvno-beta", "--msisdn", "+447700900123",
                         "--imsi", "234150000000001", "--account", "B-1", "--plan", "TP_BETA_DATA", "--json")
        assert made.returncode == 0, made.stderr
        assert '"msisdn": "447700900123"' in made.stdout
        bad = _rulebill(env, "subscribers", "provision", "--msisdn", "12", "--imsi", "1", "--account", "A", "--plan", "TP_X")
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: INVALID_ARGUMENT") and "msisdn" in bad.stderr
        issued = _rulebill(env, "tokens", "issue", "--subject", "csr1", "--tenant", "mvno-beta", "--role", "csr", "--json")
        assert issued.returncode == 0
        import json

        secret = json.loads(issued.stdout)["secret"]
        mine = _rulebill(env, "subscribers", "list", "--token", secret, "--json")
        assert [s["tenant_id"] for s in json.loads(mine.stdout)] == ["mvno-beta"]
        denied = _rulebill(env, "tenants", "create", "mvno-x", "--name", "X", "--token", secret)
        assert denied.returncode == 2 and "PERMISSION_DENIED" in denied.stderr
        unauth = _rulebill(env, "tenants", "list", "--token", "rbt_no_no")
        assert unauth.returncode == 2 and "UNAUTHENTICATED" in unauth.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "shutting down" in out and "stopped" in out
    [logged] = [line for line in out.splitlines() if " voucher rules from " in line]
    assert f"{tmp_path}/rules\\nINFO rulebill.access: forged" in logged, logged
    assert not [line for line in out.splitlines() if line.startswith("INFO rulebill.access: forged")], out
    # the bootstrap is idempotent: a second run keeps the credential
    again = _rulebill(env, "bootstrap")
    assert again.returncode == 0 and "(kept)" in again.stdout


def test_cli_without_a_server_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RULEBILL_HOME": str(tmp_path), "RULEBILL_SERVER": f"127.0.0.1:{_free_port()}", "RULEBILL_TOKEN": "rbt_a_b"}
    r = _rulebill(env, "tenants", "list")
    assert r.returncode == 2 and r.stderr.startswith("error: UNAVAILABLE") and r.stderr.count("\n") == 1
