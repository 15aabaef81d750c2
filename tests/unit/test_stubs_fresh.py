"""The committed gRPC stubs must be exactly what protoc makes of the committed .proto files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    spec = importlib.util.spec_from_file_location("gen", REPO / "protos" / "generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.py*") if p.is_file()}
    committed_dir = REPO / "protos"
    committed = {
        p.relative_to(committed_dir): p.read_bytes()
        for p in committed_dir.rglob("*_pb2*.py*")
        if p.is_file()
    }
    assert fresh, "protoc produced nothing"
    stale = sorted(str(k) for k in fresh if committed.get(k) != fresh[k])
    orphans = sorted(str(k) for k in committed if k not in fresh)
    assert stale == [], f"stale stubs, run `python protos/generate.py`: {stale}"
    assert orphans == [], f"stubs without a .proto: {orphans}"
