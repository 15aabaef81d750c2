"""The ``event_rules_backend`` setting reaches every rule table the server runs: barring (AuthorizeCall), credit
alerts (rating) and the voucher lifecycles (batch and voucher changes, the recharge move table).  The ``db_url``
fixture runs this module on each backend (tests/integration/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.settings import Settings
from servers.root import build_root
from tests.integration.conftest import SETTING_ENV

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]


def test_the_setting_picks_the_backend_of_barring_alerts_and_lifecycles(db_url: str, tmp_path: Path) -> None:
    backend = os.environ[SETTING_ENV]  # set by the db_url fixture for this module
    settings = Settings(home=tmp_path, database_url=db_url)
    assert settings.event_rules_backend == backend
    root = build_root(settings)
    try:
        used = {
            "barring": root.calls._barring.backend,
            "credit alerts": root.rating.credit_alerts.backend,
            "voucher desk lifecycle": root.vouchers.desk._lifecycle.backend,
            "recharge lifecycle": root.vouchers.recharger._lifecycle.backend,
            "distribution lifecycle": root.vouchers.distributor._lifecycle.backend,
        }
    finally:
        root.close()
    assert used == {name: backend for name in used}


def test_an_unknown_backend_stops_the_start_with_one_line(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="event_rules_backend: 'drools' is not one of compiled, durable_rules"):
        build_root(Settings(home=tmp_path, database_url=db_url, event_rules_backend="drools"))
