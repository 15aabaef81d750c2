"""Every C extension that setup.py lists is built and imports.

They are optional in setup.py (a machine without a compiler still installs, on the Python fallbacks), and the tests
of each skip when its module is missing: a silent build failure would only show as a slower product. So each one
fails here instead; set RULEBILL_ALLOW_NO_C_EXTENSION=1 on a machine that really has no C compiler.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "setup.py"


def extensions() -> list[tuple[str, str]]:
    """(module, source) of each ``Extension(...)`` in setup.py, read without running it."""
    found = []
    for node in ast.walk(ast.parse(SETUP.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Extension":
            name, sources = node.args[0], node.args[1]
            assert isinstance(name, ast.Constant) and isinstance(sources, ast.List)
            found.append((name.value, ", ".join(ast.literal_eval(sources))))
    return found


def test_setup_lists_the_eight_extensions() -> None:
    assert {name for name, _ in extensions()} == {
        "engine.mediation._csvblock", "engine.mediation._cdrid", "engine.rating._rowkernel", "engine.rating._chunkrows",
        "engine._replaylines", "engine.billing._usagecsv", "servers._wire", "store._copytext"}


@pytest.mark.parametrize(("module", "source"), extensions(), ids=[name for name, _ in extensions()])
def test_the_extension_is_built(module: str, source: str) -> None:
    if os.environ.get("RULEBILL_ALLOW_NO_C_EXTENSION") == "1":
        pytest.skip("RULEBILL_ALLOW_NO_C_EXTENSION=1")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{source} was not built ({exc}): run `make test` (pip install -e .)")
