"""An export stops when its call ends (issue #13 item 5): the clear text is read chunk by chunk at a checkpoint,
so a client that went away stops the sealer; nothing is audited and the caller's file gets no receipt."""

from __future__ import annotations

import io
from typing import BinaryIO, Iterable

import pytest

from engine.cancellation import CallScope, scope
from engine.errors import Cancelled
from engine.vouchers.distribution import SealReport
from engine.vouchers.ports import VoucherSelection

from .factories import REVEALER, World


class CountingSealer:
    """Seals nothing: copies the clear text, counting the blocks it was given (the work done)."""

    def __init__(self, scope_to_cancel: CallScope | None = None, after_blocks: int = 0) -> None:
        self.blocks = 0
        self._scope, self._after = scope_to_cancel, after_blocks

    def check(self) -> SealReport:
        return SealReport("RECIPIENT", "SIGNER")

    def seal(self, clear: Iterable[bytes], out: BinaryIO) -> SealReport:
        for block in clear:
            self.blocks += 1
            out.write(block)
            if self._scope is not None and self.blocks == self._after:
                self._scope.cancel()   # the client goes away while the file is being written
        return self.check()


def test_an_export_stops_at_the_next_chunk_when_its_call_ends(world: World) -> None:
    batch = world.batch("vp-mno-eur-10", count=120)
    world.distributor._chunk = 10   # type: ignore[attr-defined]  # small chunks: several checkpoints in a small batch
    complete = CountingSealer()
    world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), complete, io.BytesIO())
    assert complete.blocks == 1 + 12   # the header, then twelve chunks of ten
    audited = len(world.store.state.audit)
    call = CallScope()
    stopped = CountingSealer(call, after_blocks=3)
    with scope(call), pytest.raises(Cancelled):
        world.distributor.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), stopped, io.BytesIO())
    assert stopped.blocks == 3   # not one chunk more after the call ended
    assert len(world.store.state.audit) == audited   # the export's audit entry was never written
