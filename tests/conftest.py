"""Shared test fixtures (repo paths, the conformance corpus) and how the suite spreads over xdist workers.

``make test`` runs pytest with ``-n auto`` (pytest-xdist): one worker process per CPU this process may run on
(``pytest_xdist_auto_num_workers``), at most ``MAX_WORKERS``; ``-n 0`` runs in one process.  With ``--dist loadscope``
(pyproject.toml's addopts) a worker takes a whole module (or test class) at a time, so a module's database and server
(module-scoped fixtures) are still set up once per backend.  Each worker has its own temporary folders (``tmp_path``),
its own databases (tests/integration/conftest.py) and its own free ports.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# more workers than this would mostly queue on the one PostgreSQL server and on memory, not run tests sooner
MAX_WORKERS = 8


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: the CPUs this process may run on (its affinity, not the machine's count), 1 to MAX_WORKERS."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


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
