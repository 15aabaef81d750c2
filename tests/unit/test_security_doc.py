"""docs/SECURITY.md stays true to the code: its roles table is the one engine/identity.py defines, and its limits
table names every limit setting with its default."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from engine.identity import GRANTABLE_PRIVILEGES, GUARDED_PRIVILEGES, ROLE_PERMISSIONS, Permission, Role
from engine.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "SECURITY.md"
BEGIN, END = "<!-- roles table: generated from engine/identity.py -->", "<!-- end of roles table -->"
LIMIT_SETTINGS = ("max_message_bytes", "max_workers", "max_voucher_batch", "max_plan_set_bytes", "max_plan_set_files",
                  "max_plan_set_values", "max_problems_per_file", "max_problems", "max_validation_seconds", "health_check_seconds",
                  "shutdown_grace_seconds", "default_token_ttl_seconds", "max_mediation_upload_bytes",
                  "max_tap3_bytes", "rating_group_max_cdrs")


def roles_table() -> str:
    """The table of which role holds which permission, as docs/SECURITY.md shows it."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(f"`{r.value}`" for r in roles) + " |",
             "|---|" + "---|" * len(roles)]
    for permission in Permission:
        marks = ["yes" if permission in ROLE_PERMISSIONS[r] else "" for r in roles]
        extra = (" (put on a token by a security officer)" if permission.value in GUARDED_PRIVILEGES
                 else " (granted per token)" if permission.value in GRANTABLE_PRIVILEGES else "")
        lines.append(f"| `{permission.value}`{extra} | " + " | ".join(marks) + " |")
    return "\n".join(lines)


def test_the_roles_table_is_the_one_the_code_defines() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert found, f"docs/SECURITY.md lacks the roles table between {BEGIN} and {END}"
    assert found.group(1).strip() == roles_table(), "docs/SECURITY.md's roles table is stale; replace it with:\n" + roles_table()


def test_every_limit_setting_is_in_the_limits_table_with_its_default() -> None:
    text = DOC.read_text(encoding="utf-8")
    defaults = {f.name: f.default for f in fields(Settings)}
    for name in LIMIT_SETTINGS:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"docs/SECURITY.md: no row for the setting {name}"
        value = defaults[name]
        shown = {8 * 2**20: "8 MiB", 16 * 2**20: "16 MiB", 32 * 2**20: "32 MiB", 2 * 2**30: "2 GiB", 30 * 24 * 3600: "30 days"}.get(value, f"{value:,}" if isinstance(value, int) else f"{value:g}")   # type: ignore[arg-type]
        assert f"| {shown} |" in row, f"docs/SECURITY.md: {name}'s default is {shown}: {row}"


def test_the_readme_links_the_security_document() -> None:
    assert "(docs/SECURITY.md)" in (REPO / "README.md").read_text(encoding="utf-8")
