"""The README walkthrough, run as a newcomer runs it (issue 14).

Every fenced ``sh`` and ``python`` block of README.md runs in order, in one shell (variables such as ``$BATCH`` carry
from block to block), from a working folder that looks like a checkout (``plans/``, ``rules/``, ``samples/`` and
``tests/`` of this one; ``.venv/bin/rulebill`` runs this interpreter's ``rulebill``; ``var/`` is the test's own
``RULEBILL_HOME``).  The server is what ``make run`` starts: ``rulebill db upgrade``, ``rulebill bootstrap`` and
``rulebill serve`` on a free port, found by the client commands through ``RULEBILL_SERVER``.

A block preceded by ``<!-- walkthrough: skip (why) -->`` is not run; one preceded by ``<!-- walkthrough: exit N -->``
must end with exit code N.  The run fails on any other non-zero exit and on a Python traceback anywhere in the
commands' output or the server's log.  The vouchers part exports to a throw-away gpg key and decrypts with ``gpg``;
the export's signature must check with the operator's public key.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from tests.integration.helpers import wait_serving

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CHECKOUT_PARTS = ("plans", "rules", "samples", "tests")
MARK = re.compile(r"<!--\s*walkthrough:\s*(?P<mark>[^>]*?)\s*-->\s*$")  # right before a block
HEAD_READER = re.compile(r"\|\s*head(\s+-[-\w]+)*\s*$")   # a pipeline's last command is ``head``, options only
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)
STARTUP_SECONDS = 60
# the run has no bound on its whole time (a loaded machine takes what it takes), but a command that neither writes a
# byte nor lets the next one start (bash's trace, to a file of its own) for this long is taken as hung: the run is
# stopped and the test fails naming it
STALL_SECONDS = 240
TICK_SECONDS = 5


@dataclass(frozen=True)
class Block:
    line: int          # where the block starts in README.md
    lang: str
    body: str
    skip: bool
    exit_code: int


def readme_blocks(text: str) -> list[Block]:
    """The shell and Python blocks of the README in order, with their marks."""
    out = []
    for fence in FENCE.finditer(text):
        if fence.group("lang") not in ("sh", "python"):
            continue
        before = text[:fence.start()]
        mark = MARK.search(before)
        words = mark.group("mark") if mark else ""
        exit_code = 0
        if words.startswith("exit"):
            exit_code = int(words.split()[1])
        elif words and not words.startswith("skip"):
            raise AssertionError(f"README.md:{before.count(chr(10)) + 1}: unknown walkthrough mark {words!r}")
        out.append(Block(before.count("\n") + 1, fence.group("lang"), fence.group("body"), words.startswith("skip"), exit_code))
    return out


def script(blocks: list[Block]) -> str:
    """One bash script: each block announces itself, fails the run on an unexpected exit code; with
    ``$WALKTHROUGH_TRACE`` set, each command is traced to that file as it starts (``run_watched`` reads it)."""
    lines = ["set -e -o pipefail",
             'if [ -n "${WALKTHROUGH_TRACE:-}" ]; then exec 3>>"$WALKTHROUGH_TRACE"; BASH_XTRACEFD=3; set -x; fi']
    for n, b in enumerate(blocks, 1):
        if b.skip:
            continue
        body = _sigpipe_tolerated(b.body) if b.lang == "sh" else f'"$WALKTHROUGH_PYTHON" - <<\'WALKTHROUGH_PY\'\n{b.body}WALKTHROUGH_PY\n'
        lines.append(f"echo \"@@ block {n} (README.md:{b.line}) at $(date +%s.%N)\" >&2")
        if b.exit_code == 0:
            lines.append(body)
        else:  # the block's last command must fail with exactly this code
            lines += ["set +e", body.rstrip(), "rc=$?", "set -e",
                      f"if [ $rc -ne {b.exit_code} ]; then echo \"@@ block {n} exited $rc, expected {b.exit_code}\" >&2; exit 97; fi"]
    lines.append("echo '@@ walkthrough complete' >&2")
    return "\n".join(lines) + "\n"


def _sigpipe_tolerated(body: str) -> str:
    """Every command of a pipeline counts (pipefail); a pipeline read by ``head`` may end its writer with 141 (SIGPIPE,
    as the README says a closed reader does), and only that code is forgiven."""
    out = []
    for line in body.splitlines():
        command = line.split(" #", 1)[0].rstrip()
        if HEAD_READER.search(command):
            line = f"{command} || [ $? -eq 141 ]"
        out.append(line)
    return "\n".join(out) + "\n"


def ended_within(tick: float) -> Callable[["subprocess.Popen[bytes]"], bool]:
    """One tick of the watcher's clock: True when the process ended within ``tick`` seconds of wall time."""
    def ended(proc: "subprocess.Popen[bytes]") -> bool:
        try:
            proc.wait(timeout=tick)
            return True
        except subprocess.TimeoutExpired:
            return False
    return ended


def run_watched(command: str, cwd: Path, env: dict[str, str], stall: float = STALL_SECONDS,
                tick: float = TICK_SECONDS, ended: Callable[["subprocess.Popen[bytes]"], bool] | None = None
                ) -> tuple[int, str, str]:
    """Run the bash ``command`` to its end: (exit code, stdout, stderr).  Its output goes to files (a daemon it starts,
    gpg's agent, may keep them open), its commands are traced to a third; once ``stall`` seconds pass with none of the
    three growing, the command's process group is killed and an AssertionError names the command it hung in.
    ``ended`` is the watcher's clock (one call, one tick: did the process end?); by default ``tick`` seconds of wall time."""
    ended = ended or ended_within(tick)
    files = {name: cwd / f"walkthrough.{name}" for name in ("out", "err", "trace")}
    with files["out"].open("wb") as out, files["err"].open("wb") as err:
        proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env={**env, "WALKTHROUGH_TRACE": str(files["trace"])},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        size, idle = -1, 0.0
        while not ended(proc):
            now = sum(f.stat().st_size for f in files.values() if f.exists())
            idle, size = (idle + tick if now == size else 0.0), now
            if idle >= stall:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                trace = files["trace"].read_text(errors="replace").splitlines() if files["trace"].exists() else []
                raise AssertionError(f"hung: no output and no next command for {stall:g} s after "
                                     f"{trace[-1] if trace else 'the start'!r}\n"
                                     + files["err"].read_text(errors="replace")[-3000:])
    return proc.returncode, files["out"].read_text(errors="replace"), files["err"].read_text(errors="replace")


def test_a_hung_command_fails_the_walkthrough_by_name(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    blocks = [Block(1, "sh", f"echo started\nread line < {gate}   # hangs\necho never\n", False, 0)]
    held: list[Any] = []

    def ended(proc: "subprocess.Popen[bytes]") -> bool:   # the injected clock: each call one tick, no time passes
        if not held:   # opens once the hung command opens the gate (bash traced it before its redirection); never written
            held.append(open(gate, "wb"))
        held.append(None)
        assert len(held) < 100, "the watcher never gave up on a command that makes no progress"
        return proc.poll() is not None

    try:
        with pytest.raises(AssertionError, match=r"hung: no output and no next command for 1 s after '\+ read line'"):
            run_watched(script(blocks), tmp_path, dict(os.environ), stall=1, tick=0.5, ended=ended)
    finally:
        held[0].close()
    assert "never" not in (tmp_path / "walkthrough.out").read_text()


def test_a_failing_writer_on_the_left_of_a_pipe_fails_the_walkthrough() -> None:
    blocks = [Block(1, "sh", "false | head -5\n", False, 0)]
    assert subprocess.run(["bash", "-c", script(blocks)], capture_output=True).returncode != 0
    blocks = [Block(1, "sh", "(kill -PIPE $BASHPID) | head -5\n", False, 0),
              Block(2, "sh", "true | sed -n 1p\n", False, 0)]
    done = subprocess.run(["bash", "-c", script(blocks)], capture_output=True, text=True)
    assert done.returncode == 0 and "walkthrough complete" in done.stderr


def test_readme_marks_are_known_and_blocks_run() -> None:
    """The parser sees the walkthrough: the skipped blocks are the ones that cannot run here, failing ones say so."""
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    skipped = [b for b in blocks if b.skip]
    assert any("make run" in b.body for b in skipped) and any("grpcurl" in b.body for b in skipped)
    assert {b.exit_code for b in blocks} >= {0, 1}
    ran = "".join(b.body for b in blocks if not b.skip)
    for must in ("subscribers activate", "vouchers export --batch", "gpg --decrypt", "vouchers redeem", "samples/tap3/roaming.ber",
                 "--remote --rate", "security-officer"):
        assert must in ran, must


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _checkout(work: Path) -> None:
    """A folder that looks like a clean checkout to the README's commands, writing only into itself."""
    for part in CHECKOUT_PARTS:
        (work / part).symlink_to(REPO / part)
    (work / "var").mkdir()
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "rulebill"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m servers.admin "$@"\n')
    wrapper.chmod(0o755)


@pytest.fixture()
def walkthrough_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("gpg") is None or shutil.which("python3") is None:
        pytest.skip("the walkthrough needs gpg and python3 on PATH")
    work = tmp_path / "checkout"
    work.mkdir()
    _checkout(work)
    # the README's `mktemp -d` keyrings: gpg-agent's socket path must stay short (a pytest path is too long for it)
    scratch = Path(tempfile.mkdtemp(prefix="rbw-", dir="/tmp" if Path("/tmp").is_dir() else None))
    address = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RULEBILL_", "GNUPG"))}
    env.update(RULEBILL_HOME=str(work / "var"), RULEBILL_LISTEN_ADDRESS=address, RULEBILL_SERVER=address,
               TMPDIR=str(scratch), PYTHONPATH=str(REPO), WALKTHROUGH_PYTHON=sys.executable, WALKTHROUGH_DIR=str(work))
    rulebill = [str(work / ".venv" / "bin" / "rulebill")]
    for step in (["db", "upgrade"], ["bootstrap"]):  # what `make run` does before it serves
        done = subprocess.run(rulebill + step, cwd=work, env=env, capture_output=True, text=True, timeout=STARTUP_SECONDS)
        assert done.returncode == 0, done.stdout + done.stderr
    log = (work / "server.log").open("w")
    server = subprocess.Popen(rulebill + ["serve"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_serving(address, server, STARTUP_SECONDS)
        yield env
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        _stop_gpg_agents(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    server_log = (work / "server.log").read_text(errors="replace")
    assert "Traceback" not in server_log, server_log[-4000:]


def _stop_gpg_agents(tmp: Path) -> None:
    """gpg starts an agent per keyring home; the README's throw-away homes are under the test's TMPDIR."""
    for home in {p.parent for p in tmp.rglob("pubring.kbx")}:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30)


def test_readme_walkthrough_runs_verbatim(walkthrough_env: dict[str, str]) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    work = Path(walkthrough_env["WALKTHROUGH_DIR"])
    code, stdout, stderr = run_watched(script(blocks), work, walkthrough_env)
    done = subprocess.CompletedProcess(["bash"], code, stdout, stderr)
    output = done.stdout + done.stderr
    where = [line for line in done.stderr.splitlines() if line.startswith("@@")]
    print("\n".join(where))  # shown with a failure: which block, when
    assert done.returncode == 0, f"exit {done.returncode} after {where[-1] if where else 'the start'}:\n{output[-6000:]}"
    assert "@@ walkthrough complete" in done.stderr
    assert "Traceback" not in output, output[-6000:]
    # what the walkthrough promises, seen in its output
    assert "Good signature from" in done.stderr                       # the export is signed with the operator's key
    assert "# rulebill voucher distribution file v1" in done.stdout   # and decrypts with the printer's key
    assert re.search(r"credited\s+\{\"amount_micros\": \"10000000\"", done.stdout)  # a voucher recharged a subscriber
    assert "already mediated, outputs at var/asterisk.cdr.csv" in done.stdout
    assert "audit-mismatch" in done.stderr                             # the refused TAP file, with its reason
    replayed = re.search(r"^(\d+) of (\d+) case\(s\) passed$", done.stdout, re.M)   # the rating and the bill cases
    assert replayed is not None and replayed.group(1) == replayed.group(2) and int(replayed.group(1)) >= 30, done.stdout[-6000:]
    # the re-rate step re-rates bootstrap's stored sample month (November 2026, whatever today is): every sample CDR,
    # all rated but Alpha Simple's three calls to the US (a national-only plan), the charges unchanged
    expected = sum(int(a["usage"].get("calls", 0)) + int(a["usage"].get("sms", 0)) + int(a["usage"].get("data_mb", 0)) // 150
                   for a in yaml.safe_load((REPO / "plans" / "billing" / "samples.yaml").read_text())["accounts"] for _ in a["subscribers"])
    assert expected == 260
    rerated = re.search(r"^cdrs +(\d+)\nrated +(\d+)\nunrated +(\d+)\ncharged_before +(.*)\ncharged_after +(.*)\n", done.stdout, re.M)
    assert rerated is not None, done.stdout[-6000:]
    assert [int(n) for n in rerated.groups()[:3]] == [expected, expected - 3, 3] and rerated.group(4) == rerated.group(5)
    # the sample files' calls (November 2026) are rated with the subscribers' plans: none left unrated
    rating = re.findall(r"^rating    (\d+) rated, (\d+) unrated$", done.stdout, re.M)
    assert len(rating) >= 4 and all(int(rated) > 0 and unrated == "0" for rated, unrated in rating), rating
    assert re.search(r"rating    3 rated, 0 unrated\nunrated   none\n", done.stdout)   # --details: nothing to explain
    assert re.search(r"active version 1, candidate version \d+\n", done.stdout)     # what-if against the server
    assert re.search(r"^TP_SMART_M +voice +1 ", done.stdout, re.M)                   # priced with the subscriber's plan
    assert "subscriber is provisioned" not in done.stdout                              # activated before it calls
    assert not list((REPO / "samples").rglob("*.cdr.csv")) and not list(REPO.glob("*.ir.json"))  # outputs went to var/
