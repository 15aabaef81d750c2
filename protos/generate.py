"""Regenerate the Python stubs beside the .proto files: ``python protos/generate.py``.

The generated ``*_pb2.py`` / ``*_pb2_grpc.py`` are committed so that ``make run``
needs no code generator; ``tests/unit/test_stubs_fresh.py`` fails when they are stale.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in (HERE / "billing" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # test/dev dependency only

    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *proto_files(),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
