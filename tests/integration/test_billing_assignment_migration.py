"""billing_0011: a subscriber left on several accounts at once by the old AssignSubscriber race keeps its latest
assignment open and each earlier one ends where the next starts; then the database refuses a second open one.
Downgrading drops the index again, on each database."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from store.billing import billing_assignments
from store.db import make_engine
from store.migrate import alembic_config, upgrade
from store.repositories import aware

pytestmark = pytest.mark.integration
UTC = timezone.utc
T1, T2, T3 = (datetime(2026, 2, 2, h, 0, tzinfo=UTC) for h in (8, 9, 10))


def _assign(conn: Any, subscriber: str, account: str, valid_from: datetime, valid_to: datetime | None = None) -> None:
    """An assignment row as the store writes it (its times in the column type's form)."""
    conn.execute(insert(billing_assignments).values(tenant_id="mno", subscriber_id=subscriber, valid_from=valid_from, account_id=account,
                                                    msisdn="33612000001", valid_to=valid_to))


def _rows(engine: Any) -> list[tuple[str, str, str | None]]:
    t = billing_assignments
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.subscriber_id, t.c.account_id, t.c.valid_to).where(t.c.subscriber_id.like("sub_mig%"))
                            .order_by(t.c.subscriber_id, t.c.valid_from)).all()
    return [(sub, acc, None if vt is None else aware(vt).isoformat()) for sub, acc, vt in rows]


def test_doubled_open_assignments_are_ended_in_order_and_then_refused(db_url: str) -> None:
    command.downgrade(alembic_config(db_url), "billing_0008")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for acc, vf in (("ACC-C", T3), ("ACC-A", T1), ("ACC-B", T2)):
                _assign(conn, "sub_mig_two", acc, vf)       # three open at once, from the race
            _assign(conn, "sub_mig_one", "ACC-A", T1, T2)    # a clean history: left as it is
            _assign(conn, "sub_mig_one", "ACC-B", T2)
        upgrade(db_url)
        engine.dispose()
        assert _rows(engine) == [("sub_mig_one", "ACC-A", T2.isoformat()), ("sub_mig_one", "ACC-B", None),
                                 ("sub_mig_two", "ACC-A", T2.isoformat()), ("sub_mig_two", "ACC-B", T3.isoformat()),
                                 ("sub_mig_two", "ACC-C", None)]
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                _assign(conn, "sub_mig_two", "ACC-D", datetime(2026, 2, 3, tzinfo=UTC))
        command.downgrade(alembic_config(db_url), "billing_0008")
        engine.dispose()
        assert "uq_billing_assignments_open" not in {i["name"] for i in inspect(engine).get_indexes("billing_assignments")}
    finally:
        with engine.begin() as conn:
            conn.execute(delete(billing_assignments).where(billing_assignments.c.subscriber_id.like("sub_mig%")))
        upgrade(db_url)
        engine.dispose()
