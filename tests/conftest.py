"""Shared test fixtures: repo paths, the conformance corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def conformance_dir() -> Path:
    return Path(os.environ.get("RULEBILL_CONFORMANCE_DIR") or REPO.parent / "shared" / "conformance")


@pytest.fixture(scope="session")
def conformance() -> Path:
    path = conformance_dir()
    if not path.is_dir():
        pytest.skip(f"conformance corpus not found at {path} (set RULEBILL_CONFORMANCE_DIR)")
    return path
