"""One composition root (STYLE.md point 2): no module of ``servers/`` but ``servers/root.py`` builds a desk, a unit
of work factory or a database engine; the others take them from :func:`servers.root.build_root` or a root function
(``token_administration`` for ``rulebill security-officer``, ``bill_run_worker`` for a bill run's worker)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1].parent
ROOT = REPO / "servers" / "root.py"
# none may be added
KNOWN: set[str] = set()


def _builds(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if name.endswith(("Desk", "UnitOfWorkFactory")) or name == "make_engine":
                out.append(f"{path.relative_to(REPO)}: {name}")
    return out


def test_only_the_composition_root_builds_desks_and_database_engines() -> None:
    found = {b for path in sorted((REPO / "servers").rglob("*.py")) if path != ROOT for b in _builds(path)}
    assert found == KNOWN
    assert "servers/root.py: TokenDesk" in _builds(ROOT)   # the finder sees what it looks for
