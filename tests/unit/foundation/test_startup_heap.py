"""servers.app.freeze_startup_heap: what start-up built is set aside from the cyclic collector's full collections
(each walked the server's ~170,000 start-up objects and stopped every call meanwhile: docs/BENCHMARKS.md)."""

from __future__ import annotations

import gc

from servers.app import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self   # a cycle: only the cyclic collector could ever free it


def test_objects_alive_at_start_up_are_no_longer_walked_by_the_collector() -> None:
    kept = _Node()
    assert any(o is kept for o in gc.get_objects())
    try:
        assert freeze_startup_heap() > 0
        assert not any(o is kept for o in gc.get_objects())   # what a full collection walks no longer holds it
        later = _Node()
        assert any(o is later for o in gc.get_objects())      # what the calls build afterwards still is collected
    finally:
        gc.unfreeze()
