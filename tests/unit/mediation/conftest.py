"""Helpers for mediation tests: the shipped rules, fixtures and a one-call mediate()."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mediation import Layout, Mediator, MemoryMediationStore, ReconciliationSummary, find_layout

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "rules" / "mediation"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def layout(name: str) -> Layout:
    return find_layout(RULES, name)


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
