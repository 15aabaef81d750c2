"""A golden folder that mirrors shipped plans (a MIRRORS file naming the folder) holds exactly those plan files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.rating.helpers import REPO

GOLDEN = REPO / "tests" / "golden"
# parts of plans/ that are not the plan set a case rates: the operator seed, voucher and billing profiles, the top README
NOT_PLANS = ("operator.yaml", "vouchers/", "billing/", "README.md")
MIRRORS = sorted(GOLDEN.glob("*/MIRRORS"))


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in NOT_PLANS):
            out[rel] = p.read_bytes()
    return out


def test_there_is_a_mirror_of_the_shipped_plans() -> None:
    assert [m.parent.name for m in MIRRORS] == ["sample-operator"]


@pytest.mark.parametrize("marker", MIRRORS, ids=[m.parent.name for m in MIRRORS])
def test_golden_plans_equal_the_shipped_plans(marker: Path) -> None:
    shipped = _files(REPO / marker.read_text().strip())
    golden = _files(marker.parent / "plans")
    missing = sorted(set(shipped) - set(golden))
    extra = sorted(set(golden) - set(shipped))
    changed = sorted(k for k in set(shipped) & set(golden) if shipped[k] != golden[k])
    assert not (missing or extra or changed), (
        f"{marker.parent.name}/plans has drifted from {marker.read_text().strip()}/: missing {missing}, extra {extra}, "
        f"different {changed}; copy the shipped files again and run `rulebill replay {marker.parent} --update`")
