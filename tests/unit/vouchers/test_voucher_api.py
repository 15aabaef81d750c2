"""The curated public API of engine.vouchers, and the engine's import rules."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.vouchers as vouchers

from .factories import REPO

FORBIDDEN = ("grpc", "sqlmodel", "sqlalchemy", "servers", "store", "clients", "billing", "subprocess", "tempfile")  # gpg: servers/adapters


def test_everything_exported_exists_and_is_listed_once() -> None:
    assert len(vouchers.__all__) == len(set(vouchers.__all__))
    for name in vouchers.__all__:
        assert hasattr(vouchers, name), name


def test_engine_vouchers_imports_no_io_frameworks() -> None:
    for path in sorted((REPO / "engine" / "vouchers").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_no_float_near_money() -> None:
    for path in sorted(Path(REPO / "engine" / "vouchers").glob("*.py")):
        assert "float(" not in path.read_text(), path.name
