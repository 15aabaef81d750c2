"""RateCdrs' group commit, on SQLite and PostgreSQL over a real port: messages of a stream that are already received
when one is rated, with the same options, are rated and stored as one chunk (engine.rating.groups,
RatingStream.grouped), up to the ``rating_group_max_cdrs`` setting (12 here).  A stream whose messages are grouped gives the same replies, ledger
rows, counters and balances as the same messages sent one at a time, however they are grouped (a CDR stored before and
sent again in any message of a group gives back what it held where its message starts); a refused message in the middle of a group is
refused after the replies of the messages before it, which are stored; a server killed mid-stream, then the stream
again, leaves what one clean run leaves.

Grouping is made certain by a seam in the read-ahead (``EveryMessageFirst``): the server is handed its first message
only once the client's whole stream has been read, so every message after it is waiting; the test may also close a
group before chosen messages (``CUTS``: the seam says the message is not there yet, once), so any grouping is drawn."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing.v1 import rating_pb2 as rpb
from billing.v1 import rating_pb2_grpc as rrpc
from engine.settings import Settings
from engine.rating import desk, groups
from engine.readahead import END, NOT_YET, ReadAhead
from engine.clock import FixedClock
from tests.integration.conftest import MID_MONTH, running_stack
from tests.integration.helpers import WireClient, field_violations, rpc_error
from tests.integration.test_rating_stored import _wipe_rating, active, consistent, provision, state, voice_pb  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration]
C = grpc.StatusCode
REPO = Path(__file__).resolve().parents[2]
BOUND = 12


CUTS: set[int] = set()   # the messages (by index in the stream) a group is closed before


class EveryMessageFirst(ReadAhead):
    """The read-ahead of RateCdrs, its first message given only once the stream is read to its end (or to an error of
    the reading), with no bound on what waits: every later message is there when the first is rated, but for a
    message in CUTS, which ``ready`` says is not there yet the first time it is asked for (its group closed before it)."""

    def __init__(self, items: Any, name: str = "read-ahead", limit: int = 1, weight: Any = None, **_: Any) -> None:
        super().__init__(items, name, 10**9, weight)
        self._first = True
        self._given, self._cut = 0, False

    def _whole(self) -> bool:
        last = self._waiting[-1][0] if self._waiting else None
        return last is END or type(last).__name__ == "_Failed"

    def _wait(self) -> None:
        if self._first:
            self._first = False
            with self._cond:
                self._cond.wait_for(self._whole)

    def _count(self, item: Any) -> Any:
        if item is not NOT_YET:
            self._given, self._cut = self._given + 1, False
        return item

    def ready(self) -> Any:
        self._wait()
        if self._given in CUTS and not self._cut:
            self._cut = True
            return NOT_YET
        return self._count(super().ready())

    def next(self) -> Any:
        self._wait()
        return self._count(super().next())


CHUNKS: list[int] = []   # the CDRs of each chunk RateCdrs handed to its RatingStream


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server whose RateCdrs groups up to 12 CDRs, reading with EveryMessageFirst, counting its chunks (CHUNKS)."""
    home = tmp_path_factory.mktemp("groups")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(groups, "ReadAhead", EveryMessageFirst)
        rate_rows = desk.RatingStream.rate_rows

        def counted(self: Any, rows: Any, *args: Any) -> Any:
            CHUNKS.append(len(rows))
            return rate_rows(self, rows, *args)

        mp.setattr(desk.RatingStream, "rate_rows", counted)
        with running_stack(Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0,
                                    rating_group_max_cdrs=BOUND), FixedClock(MID_MONTH)) as s:
            yield s


def streamed(svc: Any, messages: list[rpb.RateCdrsRequest], cuts: set[int] = set()) -> tuple[list[rpb.RateCdrsResponse], list[int]]:
    """The messages as one stream (a group closed before each message in ``cuts``): its replies and the chunks they
    were rated in."""
    CHUNKS.clear()
    CUTS.clear()
    CUTS.update(cuts)
    try:
        replies = list(svc.RateCdrs(iter(messages)))
    finally:
        CUTS.clear()
    return replies, list(CHUNKS)


def one_at_a_time(svc: Any, messages: list[rpb.RateCdrsRequest]) -> list[rpb.RateCdrsResponse]:
    """Each message as a stream of its own (each reply received before the next message is sent)."""
    CHUNKS.clear()
    out = [reply for m in messages for reply in svc.RateCdrs(iter([m]))]
    assert CHUNKS == [len(m.cdrs) for m in messages]
    return out


NATIONAL, ABROAD = "33698765432", "442071234567"
# a message: (CDRs, options); a CDR: (subscriber 0-2, number n, national, seconds, shift of its start) - the same
# (subscriber, n) again is the CDR sent again
# tariff plan, counters, explain: mostly the same plan and counters (messages that differ are not grouped)
OPTIONS = st.tuples(st.sampled_from([("", True)] * 6 + [("TP_SMART_M", True), ("", False)]),
                    st.booleans()).map(lambda o: (*o[0], o[1]))
# drawn: (subscriber, n, national, seconds, sent again from a message before, seconds its start is moved by)
# (long calls and one subscriber more often: the bundle's last units are where grouping could move them)
DRAWN = st.tuples(st.sampled_from([0, 0, 0, 1, 2]), st.integers(0, 14), st.booleans(),
                  st.sampled_from([1, 60, 2500, 4000, 6000]) | st.integers(1, 3000), st.sampled_from([False, False, False, True]),
                  st.sampled_from([0, 0, 0, 90, 3600]))


def _numbered(messages: list[Any]) -> list[Any]:
    """Each message's CDRs their own numbers, but a CDR drawn as sent again is one of a message before it, any (the same
    subscriber and number; its duration, destination and start time drawn again), and a number drawn twice in one
    message is that CDR twice in the message (rated again after the CDRs before it, engine.rating.desk._without_repeats).
    A CDR sent again in a message that is not the first of its group gives back what it held where its message starts,
    as when its message comes alone."""
    out: list[Any] = []
    before: list[tuple[int, int]] = []
    for i, (cdrs, options) in enumerate(messages):
        mine = []
        for who, n, national, seconds, again, shift in cdrs:
            if again and before:
                who, number = before[n % len(before)]
            else:
                number = 100 * i + n
            mine.append((who, number, national, seconds, shift))
        out.append((mine, options))
        before += [(who, number) for who, number, _, _, _ in mine]
    return out


MESSAGES = st.lists(st.tuples(st.lists(DRAWN, max_size=6), OPTIONS), min_size=1, max_size=8).map(_numbered)


def requests(msisdns: list[str], start: datetime, drawn: list[Any]) -> list[rpb.RateCdrsRequest]:
    out = []
    for cdrs, (plan, counters, explain) in drawn:
        out.append(rpb.RateCdrsRequest(cdrs=[_cdr_pb(msisdns, start, *cdr) for cdr in cdrs],
                                       options=rpb.RateOptions(tariff_plan=plan, use_bundle_counters=counters, explain=explain)))
    return out


def _cdr_pb(msisdns: list[str], start: datetime, who: int, n: int, national: bool, seconds: int, shift: int = 0) -> Any:
    return voice_pb(n, msisdns[who], NATIONAL if national else ABROAD, seconds, start + timedelta(seconds=n + shift))


def test_grouped_messages_give_what_one_at_a_time_gives_however_they_are_grouped(stack, active) -> None:  # type: ignore[no-untyped-def]
    """Drawn messages (CDRs of three subscribers on a 7,200 s bundle; a CDR sent again in any later message, with
    another duration, destination or start time, or twice in one; options that differ from message to message), grouped
    as they come or with groups closed before drawn messages: the same replies, ledger, counters and balances as the
    messages sent one at a time (each its own chunk, as ``rating_group_max_cdrs`` 1 rates them)."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(drawn=MESSAGES, cuts=st.sets(st.integers(1, 7), max_size=4))
    # what main gave differently (the units of the CDR sent again in the third message went back at its group's start,
    # so the second message's call took them): generated examples meet such a case only now and then
    @example(drawn=[([(0, 0, True, 3000, 0), (0, 1, True, 4000, 0)], ("", True, False)), ([(0, 100, True, 2600, 0)], ("", True, False)),
                    ([(0, 1, True, 60, 30)], ("", True, False))], cuts={1})
    def check(drawn: list[Any], cuts: set[int]) -> None:
        msisdns = [provision(stack).msisdn for _ in range(3)]
        start = MID_MONTH + timedelta(minutes=5)
        messages = requests(msisdns, start, drawn)
        alone = one_at_a_time(svc, messages)
        stored_alone = state(stack.root, set(msisdns))
        _wipe_rating(stack.root, set(msisdns))
        grouped, chunks = streamed(svc, messages, cuts)
        assert grouped == alone
        assert state(stack.root, set(msisdns)) == stored_alone
        consistent(stored_alone)
        assert sum(chunks) == sum(len(m.cdrs) for m in messages)
        assert max(chunks) <= BOUND   # no message holds more than 6

    check()


def test_messages_waiting_are_one_chunk_up_to_the_bound_and_answer_each_its_own(stack, active) -> None:  # type: ignore[no-untyped-def]
    """Ten messages of 1 to 5 CDRs, all with the same options, each CDR once: chunks of whole messages up to 12 CDRs,
    each reply its own message's CDRs in order (an explanation where its message asked for one), and the state of the
    same messages sent one at a time."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    msisdns = [provision(stack).msisdn for _ in range(2)]
    start = MID_MONTH + timedelta(minutes=6)
    sizes = [3, 5, 4, 1, 2, 5, 5, 2, 1, 4]
    drawn, n = [], 0
    for size in sizes:
        drawn.append(([(n % 2, n + i, i % 3 != 0, 600 + 60 * i) for i in range(size)], ("", True, n % 2 == 0)))
        n += size
    messages = requests(msisdns, start, drawn)
    alone = one_at_a_time(svc, messages)
    stored_alone = state(stack.root, set(msisdns))
    _wipe_rating(stack.root, set(msisdns))
    grouped, chunks = streamed(svc, messages)
    assert chunks == [12, 8, 12]   # whole messages while they fit: 3+5+4, 1+2+5, 5+2+1+4
    assert [len(reply.rated) for reply in grouped] == sizes
    assert grouped == alone
    assert [any(r.explanation for r in reply.rated) for reply in grouped] == [m.options.explain for m in messages]
    assert state(stack.root, set(msisdns)) == stored_alone
    assert any(units for row in stored_alone["ledger"] for _b, units in json.loads(row[5]))   # bundles were spent


def test_a_refused_message_inside_a_group_comes_after_the_replies_of_the_messages_before_it(stack, active) -> None:  # type: ignore[no-untyped-def]
    """A bad CDR (INVALID_ARGUMENT naming its field) or another tenant's CDRs (PERMISSION_DENIED) in the third of
    five messages all waiting: the first two are answered and stored, the error follows, nothing after it is stored."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    beta = stack.client("mvno-beta").stub(rrpc.RatingServiceStub)
    for refused, code, client in (("bad", C.INVALID_ARGUMENT, svc), ("theirs", C.PERMISSION_DENIED, beta)):
        msisdns = [provision(stack).msisdn]
        start = MID_MONTH + timedelta(minutes=7)
        options = rpb.RateOptions(use_bundle_counters=True)
        tenant = "mno" if refused == "theirs" else ""
        messages = [rpb.RateCdrsRequest(cdrs=[voice_pb(10 * m + i, msisdns[0], NATIONAL, 700, start + timedelta(seconds=10 * m + i),
                                                       tenant=tenant if m == 2 else "")
                                              for i in range(3)], options=options) for m in range(5)]
        if refused == "bad":
            messages[2].cdrs[1].duration_seconds = 2**62
        alone = one_at_a_time(client, messages[:2]) if client is svc else None
        stored_alone = state(stack.root, set(msisdns))
        _wipe_rating(stack.root, set(msisdns))
        CHUNKS.clear()
        got: list[rpb.RateCdrsResponse] = []

        def stream() -> None:
            for reply in client.RateCdrs(iter(messages)):
                got.append(reply)

        err = rpc_error(stream, code)
        assert CHUNKS == [6]   # the first two messages one chunk, closed at the refused one
        assert len(got) == 2 and [len(r.rated) for r in got] == [3, 3]
        if refused == "bad":
            assert set(field_violations(err)) == {"cdrs[1].duration_seconds"}
            assert got == alone
            assert state(stack.root, set(msisdns)) == stored_alone
        else:
            assert len(state(stack.root, set(msisdns))["ledger"]) == 6


def test_a_cdr_twice_in_one_message_is_rated_again_after_the_cdrs_before_it(stack, active) -> None:  # type: ignore[no-untyped-def]
    """One message holding a CDR twice (the second time longer), with counters: each gets its reply in place, and the
    ledger, counters and balances are those of the CDRs before the repeat sent first and the rest in the next message
    (the later rating replaces the earlier; the CDR holds its bundle units once).  It was refused as
    RATING_CONTENTION: the chunk's write found the CDR stored by itself, every attempt."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    msisdns = [provision(stack).msisdn]
    start = MID_MONTH + timedelta(minutes=8)
    options = rpb.RateOptions(use_bundle_counters=True)
    cdrs = [voice_pb(1, msisdns[0], NATIONAL, 600, start), voice_pb(2, msisdns[0], ABROAD, 60, start + timedelta(seconds=1)),
            voice_pb(1, msisdns[0], NATIONAL, 1800, start), voice_pb(3, msisdns[0], NATIONAL, 120, start + timedelta(seconds=2))]
    apart = one_at_a_time(svc, [rpb.RateCdrsRequest(cdrs=cdrs[:2], options=options), rpb.RateCdrsRequest(cdrs=cdrs[2:], options=options)])
    stored_apart = state(stack.root, set(msisdns))
    _wipe_rating(stack.root, set(msisdns))
    together, chunks = streamed(svc, [rpb.RateCdrsRequest(cdrs=cdrs, options=options)])
    assert chunks == [4]
    assert len(together) == 1 and list(together[0].rated) == [r for reply in apart for r in reply.rated]
    assert [r.status for r in together[0].rated] == [rpb.RATING_STATUS_RATED] * 4
    assert state(stack.root, set(msisdns)) == stored_apart
    assert len(stored_apart["ledger"]) == 3   # one row per CDR: the repeat replaced the first rating
    consistent(stored_apart)


def test_a_cdr_sent_again_further_on_gives_back_where_its_message_starts(stack, active) -> None:  # type: ignore[no-untyped-def]
    """A CDR stored by an earlier group and sent again, shorter, in a message that is not the first of its group (found
    by hypothesis): what it held goes back where its message starts, so the long CDR of the message before it in the
    group does not take those units (it did, in main before the fix: the units went back at the group's start).  The
    same replies and state as the messages sent one at a time, and every unit spent once."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    msisdns = [provision(stack).msisdn for _ in range(2)]
    start = MID_MONTH + timedelta(minutes=10)
    options = ("", True, False)
    # the bundle is 7,200 s: 3,000 + 4,000 leave 200; the second message's long call would take 2,600 of the bundle,
    # not 200, if the 4,000 s CDR, sent again as 60 s in the third message, gave its units back before it
    messages = requests(msisdns, start, [([(0, 0, True, 3000), (0, 1, True, 4000)], options),
                                         ([(0, 2, True, 2600)], options),
                                         ([(0, 1, True, 60, 30)], options)])
    alone = one_at_a_time(svc, messages)
    stored_alone = state(stack.root, set(msisdns))
    _wipe_rating(stack.root, set(msisdns))
    replies, chunks = streamed(svc, messages, {1})
    assert chunks == [2, 2]   # the first message a group of its own, the next two one group
    assert replies == alone
    assert [s.bundle_units for s in replies[1].rated[0].spans] == [200]
    st = state(stack.root, set(msisdns))
    assert st == stored_alone
    assert len(st["ledger"]) == 3
    consistent(st)
    used = sum(u for row in st["ledger"] for _b, u in json.loads(row[5]))
    [(_m, _c, _bid, allowance, remaining)] = [c for c in st["counters"] if c[2] == "BN_S_VOICE_120MIN"]
    assert used == allowance - remaining


SERVER = r"""
import sys
from pathlib import Path
from engine.settings import Settings
from servers.app import create_server
from servers.root import build_root
from datetime import datetime
from engine.clock import FixedClock
root = build_root(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2], rating_group_max_cdrs=int(sys.argv[3])),
                  FixedClock(datetime.fromisoformat(sys.argv[4])))
server, port = create_server(root, "127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
"""


def test_a_server_killed_mid_stream_then_the_stream_again_equals_one_clean_run(stack, active, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A server of its own (groups up to 200 CDRs, no seam: the client sends every message at once, so they wait while
    a group is written) is killed by SIGKILL after a random reply; the whole stream sent again to another server leaves
    what one clean run leaves, and every reply it gets is the clean run's."""
    svc = stack.client("mno").stub(rrpc.RatingServiceStub)
    msisdns = [provision(stack).msisdn for _ in range(3)]
    start = MID_MONTH + timedelta(minutes=9)
    drawn = [([(n % 2, 30 * m + n, n % 3 != 0, 300 + 7 * n) for n in range(30)], ("", True, False)) for m in range(20)]
    messages = requests(msisdns, start, drawn)
    clean, _ = streamed(svc, messages)
    stored_clean = state(stack.root, set(msisdns))
    _wipe_rating(stack.root, set(msisdns))
    seed = int(os.environ.get("RULEBILL_TEST_KILL_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"kill point drawn with seed {seed}: RULEBILL_TEST_KILL_SEED={seed} replays it")   # in a failure's report
    rng = random.Random(seed)
    dead = threading.Event()
    child = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path), db_url, "200", MID_MONTH.isoformat()], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        killed = WireClient(f"127.0.0.1:{port}", stack.token("mno"))
        target, got = rng.randint(1, 15), []

        def sent_then_held() -> Iterator[Any]:
            # the stream stays open until the kill: the call cannot end well even when every reply came before it
            yield from messages
            dead.wait(120)

        with pytest.raises(grpc.RpcError):
            for reply in killed.stub(rrpc.RatingServiceStub).RateCdrs(sent_then_held()):
                got.append(reply)
                if len(got) == target:
                    os.kill(child.pid, signal.SIGKILL)   # the groups after it being rated or written
                    dead.set()
        killed.close()
        assert got == clean[:len(got)] and len(got) >= target
    finally:
        dead.set()
        child.kill()
        child.wait(timeout=60)
        child.stdout.close()   # type: ignore[union-attr]
    assert len(state(stack.root, set(msisdns))["ledger"]) >= 30 * target   # every reply's CDRs stored
    again, _ = streamed(svc, messages)   # the sender's retry: the whole stream again
    assert again == clean
    assert state(stack.root, set(msisdns)) == stored_clean
