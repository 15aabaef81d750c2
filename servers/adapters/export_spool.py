"""ExportVouchers' distribution file spooled on disk: the adapter that lets the servicer stream a sealed file whose
receipt (its SHA-256 and size, the audit entry committed) is known only once the whole file is written.

The distributor (engine.vouchers.distribution.Distributor.export_to) writes the ciphertext into an anonymous temporary
file (unlinked at once: nothing is left behind if the server dies mid-export, and no other process can open it by
name); the receipt, then the file's blocks, are handed to the caller, and the file is closed (its space given back)
when the caller's ``with`` ends, the stream read to its end or cancelled.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

from engine.identity import Principal
from engine.vouchers.distribution import Distributor, ExportReceipt
from engine.vouchers.ports import VoucherSelection

EXPORT_BLOCK = 256 * 1024   # bytes of the file per ExportVouchers message


class SpooledExports:
    """:meth:`export`: a distribution file sealed for a recipient, as its receipt and its blocks."""

    def __init__(self, distributor: Distributor, block: int = EXPORT_BLOCK, folder: Path | None = None) -> None:
        self._distributor = distributor
        self._block = block
        self._folder = folder   # where the spool file lies (None: the system's temporary folder)

    @contextmanager
    def export(self, principal: Principal, selection: VoucherSelection, recipient_public_key: bytes, armor: bool,
               request_id: str = "") -> Iterator[tuple[ExportReceipt, Iterator[bytes]]]:
        """(the receipt, the file's blocks of at most ``block`` bytes), valid inside the ``with``."""
        with tempfile.TemporaryFile(prefix="rb-export-", dir=self._folder) as spool:   # ciphertext only: what gpg wrote
            receipt = self._distributor.export_to(principal, selection, recipient_public_key, armor, spool, request_id)
            spool.seek(0)
            yield receipt, iter(partial(spool.read, self._block), b"")
