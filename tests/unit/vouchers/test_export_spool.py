"""ExportVouchers' spool (servers.adapters.export_spool.SpooledExports): the receipt first, then the sealed file in
blocks, read back from a temporary file that never has a name in its folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine.errors import PermissionDenied
from engine.vouchers.distribution import Distributor
from engine.vouchers.ports import VoucherSelection
from servers.adapters.export_spool import SpooledExports

from .factories import CSR, REVEALER, World
from .fakes import PlainSealer


def test_the_spool_gives_the_receipt_then_the_whole_sealed_file_in_blocks_and_leaves_nothing(world: World, tmp_path: Path) -> None:
    batch = world.batch("vp-mno-eur-10", count=5)
    built = Distributor(world.store, world.keys, world.lifecycle, world.clock,  # type: ignore[arg-type]
                        sealers=lambda key, armor: PlainSealer())
    spool = SpooledExports(built, block=7, folder=tmp_path)
    with spool.export(REVEALER, VoucherSelection(batch_id=batch.batch_id), b"KEY", False, "exp-1") as (receipt, blocks):
        assert list(tmp_path.iterdir()) == []   # the spool file has no name: nothing to find or leave behind
        got = list(blocks)
    assert list(tmp_path.iterdir()) == []
    data = b"".join(got)
    assert all(0 < len(b) <= 7 for b in got) and len(got) == -(-len(data) // 7)
    assert (receipt.size, receipt.sha256, receipt.count) == (len(data), hashlib.sha256(data).hexdigest(), 5)
    assert {line.split(",")[1] for line in PlainSealer.opened(data).splitlines()[6:]} == set(world.pins(batch).values())
    with pytest.raises(PermissionDenied):   # the distributor's checks come first: no spool is written for a refusal
        with spool.export(CSR, VoucherSelection(batch_id=batch.batch_id), b"KEY", False):
            pass
    assert list(tmp_path.iterdir()) == []
