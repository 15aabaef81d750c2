"""Helpers for mediation tests: the shipped rules, fixtures and a one-call mediate()."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.mediation import Layout, Mediator, MemoryMediationStore, ReconciliationSummary, find_layout
from engine.mediation.sources import Source, find_source

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "rules" / "mediation"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# the shipped source each shipped layout's tests read their files as coming from
SOURCE_OF = {"asterisk": "london-pbx", "asterisk_custom": "london-pbx", "freeswitch": "madrid-freeswitch",
             "freeswitch_builtin": "madrid-freeswitch", "cisco_cucm": "chicago-cucm", "kamailio_acc": "edge-kamailio"}


def source(name: str) -> Source | None:
    """The shipped source the tests use for a shipped layout (None for layouts that need none)."""
    return find_source(RULES, SOURCE_OF.get(name, ""))


def layout(name: str, zone: str | None = None) -> Layout:
    """A shipped layout, bound to the source its tests read files from (``zone``: in another time zone)."""
    origin = source(name)
    if zone is not None and origin is not None:
        origin = replace(origin, zone=zone)
    return find_layout(RULES, name).bind(origin)


def mediate(
    lay: Layout | str, data: bytes, store: MemoryMediationStore | None = None, chunk_size: int = 20_000, block_size: int = 1 << 20
) -> tuple[ReconciliationSummary, MemoryMediationStore]:
    store = store if store is not None else MemoryMediationStore()
    lay = layout(lay) if isinstance(lay, str) else lay
    summary = Mediator(lay, store, store, chunk_size=chunk_size, block_size=block_size).mediate_bytes(data)
    return summary, store


@pytest.fixture
def store() -> MemoryMediationStore:
    return MemoryMediationStore()
