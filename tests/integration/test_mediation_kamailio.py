"""A real switch: Kamailio as a SIP proxy with its dialog and acc modules, sipp placing calls of known
durations through it to a sipp answering side, all on free loopback ports.  Kamailio's own CDR lines are
mediated with rules/mediation/kamailio_acc.yaml through MediationService and rated: each call once,
with its duration.

Needs the Debian packages ``kamailio`` and ``sip-tester`` (``.ci/run`` installs them); skipped with one
line where they are missing.  Every process started here is stopped by its PID.
"""

from __future__ import annotations

import math
import os
import pty
import re
import shutil
import socket
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Iterator

import pytest

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from billing.v1 import subscriber_pb2 as spb
from engine.clock import FixedClock
from engine.settings import Settings
from servers.bootstrap import bootstrap
from tests.integration.conftest import Stack, running_stack

pytestmark = pytest.mark.integration

KAMAILIO, SIPP = shutil.which("kamailio"), shutil.which("sipp")
MODULES = next((p for p in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
                            "/usr/lib/kamailio/modules") if Path(p, "acc.so").is_file()), "")
if not (KAMAILIO and SIPP and MODULES):
    pytest.skip("kamailio and sipp are not installed (Debian packages kamailio and sip-tester; .ci/run installs them)",
                allow_module_level=True)

DURATIONS_MS = (1200, 2300, 3100)   # the answered calls' lengths as sipp holds them
CALLEE = "33198765432"              # a French landline: TP_SMART_S rates it as DST_NATIONAL_FIXED

CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{proxy}
mpath="{modules}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "dialog.so"
loadmodule "acc.so"
modparam("dialog", "dlg_match_mode", 2)
modparam("acc", "cdr_enable", 1)
modparam("acc", "cdr_start_on_confirmed", 1)
modparam("acc", "cdr_extra", "caller=$dlg_var(caller);callee=$dlg_var(callee);callid=$dlg_var(callid)")
request_route {{
  if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
  if (has_totag()) {{
    dlg_manage();
    if (is_method("ACK")) {{ forward(); exit; }}
    t_relay();
    exit;
  }}
  if (is_method("INVITE")) {{
    dlg_manage();
    $dlg_var(caller) = $fU;
    $dlg_var(callee) = $rU;
    $dlg_var(callid) = $ci;
  }}
  $du = "sip:127.0.0.1:{callee_port}";
  t_relay();
}}
"""

# a caller whose From user, To user and talk time come from the injection file (fields 0, 1, 2)
UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="rulebill caller">
  <send retrans="500"><![CDATA[
INVITE sip:[field1]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[call_number]
To: <sip:[field1]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:[field0]@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:[field0]@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><assignstr assign_to="talk" value="[field2]"/><todouble assign_to="ms" variable="talk"/></action></nop>
  <pause variable="ms"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:[field0]@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def _free_udp_ports(n: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class _Output:
    """A process's output, copied to a file by a reader thread as it comes; :meth:`wait_for` waits on what it says
    (woken by each read and by the end of the output: no polling; the limit only stops a hung run)."""

    def __init__(self, proc: subprocess.Popen, stream: IO[bytes], path: Path) -> None:  # type: ignore[type-arg]
        self.proc, self.path, self.text, self.ended = proc, path, "", False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream, open(self.path, "wb") as copy:
            while True:
                try:
                    chunk = os.read(stream.fileno(), 65536)
                except OSError:   # a terminal whose process has gone (EIO)
                    chunk = b""
                if not chunk:
                    break
                copy.write(chunk)
                copy.flush()
                with self._changed:
                    self.text += chunk.decode(errors="replace")
                    self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, text: str, what: str, times: int = 1, limit: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.text.count(text) >= times or self.ended, limit):
                raise AssertionError(f"gave up waiting for {what}")
            if self.text.count(text) < times:
                raise AssertionError(f"{self.proc.args[0]} stopped before {what}: {self.text[-1500:]}")


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The conftest's server on a clock an hour behind the switch's: the plan set bootstrap activates and the
    subscribers the test activates are in force before any call Kamailio records (no waiting for the wall clock)."""
    settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=db_url, shutdown_grace_seconds=2.0)
    with running_stack(settings, FixedClock(datetime.now(timezone.utc) - timedelta(hours=1))) as s:
        yield s


@pytest.fixture(scope="module")
def booted(stack: Stack) -> datetime:
    """The sample plan set active, as `make run` leaves a server: when it was activated (on the server's clock)."""
    bootstrap(stack.root.settings, stack.root, load_plans=True)
    return stack.root.clock.now()


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[tuple[int, _Output]]:
    """Kamailio (proxy) and a sipp answering side on free loopback ports: (proxy port, Kamailio's log)."""
    proxy, callee = _free_udp_ports(2)
    config = tmp_path / "kamailio.cfg"
    config.write_text(CONFIG.format(proxy=proxy, callee_port=callee, modules=MODULES), encoding="utf-8")
    started: list[subprocess.Popen] = []  # type: ignore[type-arg]
    try:
        # on a terminal sipp draws its screen at once (to a pipe it holds its output back until it exits)
        screen, terminal = pty.openpty()
        uas = subprocess.Popen([SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(callee), "-nostdin"],  # type: ignore[list-item]
                               stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, cwd=tmp_path)
        os.close(terminal)
        started.append(uas)
        kamailio = subprocess.Popen([KAMAILIO, "-f", str(config), "-DD", "-E", "-Y", str(tmp_path), "-w", str(tmp_path)],  # type: ignore[list-item]
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
        started.append(kamailio)
        assert kamailio.stderr is not None
        answering = _Output(uas, os.fdopen(screen, "rb", buffering=0), tmp_path / "uas.out")
        log = _Output(kamailio, kamailio.stderr, tmp_path / "kamailio.log")
        # sipp draws its screen once its sockets are open; Kamailio sizes its UDP socket's buffer once it is bound
        answering.wait_for("Scenario Screen", "the sipp answering side to listen")
        log.wait_for("SO_RCVBUF is finally", "kamailio to listen")
        yield proxy, log
    finally:
        for proc in reversed(started):
            _stop(proc)


def _place_calls(tmp_path: Path, proxy: int, callers: list[str]) -> None:
    scenario = tmp_path / "uac.xml"
    scenario.write_text(UAC, encoding="iso-8859-1")
    calls = tmp_path / "calls.csv"
    calls.write_text("SEQUENTIAL\n" + "".join(f"{c};{CALLEE};{ms}\n" for c, ms in zip(callers, DURATIONS_MS)), encoding="ascii")
    (caller_port,) = _free_udp_ports(1)
    done = subprocess.run([SIPP, f"127.0.0.1:{proxy}", "-sf", str(scenario), "-inf", str(calls), "-i", "127.0.0.1",  # type: ignore[list-item]
                           "-p", str(caller_port), "-m", str(len(callers)), "-l", str(len(callers)), "-r", "10",
                           "-nostdin", "-timeout", "60", "-timeout_error"],
                          cwd=tmp_path, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]


def test_kamailio_acc_cdrs_are_mediated_and_each_call_rated_once(stack: Stack, booted: datetime, switch: tuple[int, _Output],
                                                                  tmp_path: Path) -> None:
    proxy, log = switch
    subs = stack.client("mno").subscribers.rpc
    callers = []
    for _ in DURATIONS_MS:
        sub = subs.ProvisionSubscriber(spb.ProvisionSubscriberRequest(
            msisdn=stack.unique_msisdn(), imsi=stack.unique_imsi(), billing_account="ACC-KAM",
            payment_type=spb.PAYMENT_TYPE_POSTPAID, tariff_plan="TP_SMART_S")).subscriber
        subs.ActivateSubscriber(spb.ActivateSubscriberRequest(subscriber_id=sub.subscriber_id))
        callers.append(sub.msisdn)
    # the calls start after the plan set's activation (CDR times are whole seconds): the server's clock is behind
    assert booted < datetime.now(timezone.utc) - timedelta(minutes=30)

    _place_calls(tmp_path, proxy, callers)
    log.wait_for("log_write_cdr()", "acc to write every call's CDR", times=len(callers))
    # as a syslog rule routing the acc facility to its own file would keep them (prefix and all)
    cdr_file = tmp_path / "kamailio-cdr.log"
    cdr_file.write_text("".join(line for line in log.text.splitlines(True) if "log_write_cdr()" in line))
    acc = {m["callid"]: m for m in map(lambda line: dict(re.findall(r"(\w+)=([^;\s]+)", line)), cdr_file.read_text().splitlines())}
    assert len(acc) == len(callers)

    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    header = pb.MediateFileHeader(layout="kamailio_acc", file_name="kamailio-cdr.log", source="edge-kamailio", rate=True, return_cdrs=True)
    replies = list(stub.MediateFile(iter([pb.MediateFileRequest(header=header), pb.MediateFileRequest(data=cdr_file.read_bytes())])))
    summary = replies[-1].summary
    cdrs = [c for r in replies if r.WhichOneof("part") == "cdrs" for c in r.cdrs.cdrs]
    assert summary.file_error.code == "" and (summary.records_in, summary.normalised) == (len(callers), len(callers))
    assert (summary.rated, summary.unrated) == (len(callers), 0)     # each call rated, once

    by_caller = {c.a_number: c for c in cdrs}
    for caller, talk_ms in zip(callers, DURATIONS_MS):
        cdr = by_caller[caller]
        logged = float(acc[cdr.origin_id]["duration"])
        assert talk_ms / 1000 <= logged < talk_ms / 1000 + 1.0        # acc measured the call sipp held
        assert cdr.duration_seconds == math.ceil(logged)                # billed what was used, rounded up
        assert (cdr.b_number, cdr.tenant_id, cdr.source) == (CALLEE, "mno", "edge-kamailio")

    again = list(stub.MediateFile(iter([pb.MediateFileRequest(header=header), pb.MediateFileRequest(data=cdr_file.read_bytes())])))[-1].summary
    assert again.already_ingested and (again.rated, again.unrated) == (len(callers), 0)
    # the same dialogs in another file (the log read again, one line longer) are duplicates: billed once
    longer = cdr_file.read_bytes() + cdr_file.read_bytes().splitlines(True)[0]
    other = list(stub.MediateFile(iter([pb.MediateFileRequest(header=header), pb.MediateFileRequest(data=longer)])))[-1].summary
    assert (other.normalised, other.duplicates, other.rated) == (0, len(callers) + 1, 0)
