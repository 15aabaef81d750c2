"""engine.gcpause: a pause of the cyclic collector is counted across threads (a rating stream pauses it on its request
thread and on its writer thread at the same time)."""

from __future__ import annotations

import gc
import threading

from engine.gcpause import collector_paused


def test_the_collector_is_back_on_only_when_the_last_pause_of_any_thread_ends() -> None:
    assert gc.isenabled()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with collector_paused():
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())   # the other thread's pause ended meanwhile: still off for this one

    t = threading.Thread(target=second)
    t.start()
    with collector_paused():
        first_in.set()
        second_in.wait()
    first_out.set()
    t.join()
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
