"""A re-rating run killed by SIGKILL between its chunks (or inside one), then started again, leaves what one clean run
leaves, on SQLite and PostgreSQL: the committed chunks re-rated, counters and balances equal to the ledger, the rest
re-rated by the second run from what the run's CDRs still hold (engine.rating.rerate)."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import MID_MONTH
from tests.integration.test_plans_rating import sample_files
from tests.integration.test_rating_stored import (  # noqa: F401 - fixtures
    _subscriber, consistent, killed_mid_stream, roots, state, store_cdrs)
from tests.integration.test_rating_stream import OPERATOR, calls

pytestmark = [pytest.mark.integration]

CHILD = r"""
import copy, sys, json
from datetime import datetime, timedelta
from pathlib import Path
from engine.settings import Settings
from servers.root import build_root
from tests.integration.test_rating_stream import OPERATOR

url, home, start = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[4])
root = build_root(Settings(home=Path(home), database_url=url))
run = copy.copy(root.rerate)
run._chunk = 40
for step in run.steps(OPERATOR, "mno", start, start + timedelta(hours=1), VERSION):
    if isinstance(step, tuple) and step[0]:
        print("commit", -(-step[0] // 40) - 1, flush=True)
print("done", flush=True)
"""


def test_sigkill_mid_run_then_the_run_again_equals_one_clean_run(roots, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _ = roots
    msisdns = [_subscriber(root).msisdn for _ in range(3)]
    start = MID_MONTH + timedelta(days=5)
    cdrs = [c for chunk in calls(msisdns, start, 6, 50, seed=31, tag="rerate-crash") for c in chunk]
    store_cdrs(root, cdrs)
    for i in range(0, len(cdrs), 40):   # rated from scratch under the plan set in force
        root.rating.rate_many(OPERATOR, cdrs[i:i + 40], use_counters=True)
    from_scratch = state(root, set(msisdns))
    dearer = root.plans.upload(OPERATOR, "mno", {f.path: f.content for f in sample_files(
        {"rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "1.25"')})}).version
    run = copy.copy(root.rerate)
    run._chunk = 40
    end = start + timedelta(hours=1)
    clean = run.rerate(OPERATOR, "mno", start, end, dearer)
    once = state(root, set(msisdns))
    assert clean.charged_after != clean.charged_before   # the dearer version changes what the run leaves
    consistent(once)
    run.rerate(OPERATOR, "mno", start, end)   # back under the version in force: as rated from scratch
    assert state(root, set(msisdns)) == from_scratch

    assert killed_mid_stream(CHILD.replace("VERSION", str(dearer)), db_url, tmp_path, msisdns, start, 7) >= 1
    again = run.rerate(OPERATOR, "mno", start, end, dearer)   # started again after the kills
    assert state(root, set(msisdns)) == once
    assert (again.cdrs, again.rated, again.charged_after) == (clean.cdrs, clean.rated, clean.charged_after)
