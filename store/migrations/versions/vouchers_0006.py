"""Vouchers: a replayed PIN entry with another PIN is a counted guess.

A request id already used by the subscriber (same tenant, same subscriber) sent again with another PIN is refused
``REQUEST_ID_REUSED`` (reason ``voucher``); the same id with the right PIN is answered with the stored result.  The
two answers tell whether the PIN sent is the earlier voucher's, and before this revision the refusal was neither
counted nor barred: replaying one request id probed PINs without ever reaching the lockout
(``rules/lifecycle/recharge_lockout.yaml``).  Now, as ``engine.vouchers.redemption.settle_attempt`` decides:

* PostgreSQL: ``voucher_pin_attempt`` answers such a replay ``barred`` while the subscriber's bar holds, and
  otherwise counts it as a failed attempt (the counter, the bar at ``max_failures``, the ``voucher.redeem_failed`` /
  ``voucher.reserve_failed`` audit entry with reason ``voucher``) before it answers ``request_id_reused``;
* SQLite and the in-memory store decide through ``settle_attempt`` itself (no schema change).

Downgrading restores the function of ``vouchers_0005``.

Revision ID: vouchers_0006
Revises: vouchers_0005
Create Date: 2026-12-08
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "vouchers_0006"
down_revision = "vouchers_0005"
branch_labels = None
depends_on = None


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_for_0006", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swap(sql: str, old: str, new: str) -> str:
    assert sql.count(old) == 1, old
    return sql.replace(old, new)


_FIRST_REPLAY = """    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;
    -- the subscriber's counter row"""
_FIRST_REPLAY_NEW = """    -- (another PIN under the same id is a guess: counted below, under the subscriber's lock)
    SELECT * INTO rp FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes) LIMIT 1;
    IF FOUND AND NOT (rp.outcome = 'request_id_reused' AND rp.reason = 'voucher') THEN
        RETURN NEXT rp; RETURN;
    END IF;
    -- the subscriber's counter row"""
_LOCKED_REPLAY = """    ON CONFLICT (msisdn) DO UPDATE SET msisdn = rg.msisdn RETURNING * INTO g;
    RETURN QUERY SELECT * FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes);
    IF FOUND THEN RETURN; END IF;"""
_LOCKED_REPLAY_NEW = """    ON CONFLICT (msisdn) DO UPDATE SET msisdn = rg.msisdn RETURNING * INTO g;
    SELECT * INTO rp FROM voucher_pin_replay(p_event, sub_tenant, p_request_id, p_msisdn, p_hashes) LIMIT 1;
    replayed := FOUND;
    other_pin := replayed AND rp.outcome = 'request_id_reused' AND rp.reason = 'voucher';
    IF replayed AND NOT other_pin THEN
        RETURN NEXT rp; RETURN;
    END IF;"""


def _functions() -> tuple[str, str]:
    """(vouchers_0005's PIN attempt function, the same counting a replay with another PIN)."""
    old = _load("vouchers_0005")._functions()[1][0]
    new = _swap(old, "    r voucher_attempt_result;\n",
                "    r voucher_attempt_result;\n    rp voucher_attempt_result;\n    replayed boolean;\n    other_pin boolean := false;\n")
    new = _swap(new, _FIRST_REPLAY, _FIRST_REPLAY_NEW)
    new = _swap(new, _LOCKED_REPLAY, _LOCKED_REPLAY_NEW)
    new = _swap(new, "    IF cardinality(p_hashes) = 0 THEN\n        code := 'PIN_CHECK_DIGIT';\n",
                "    IF other_pin THEN\n        code := 'voucher';   -- the earlier request's voucher was another: nothing is looked up\n"
                "    ELSIF cardinality(p_hashes) = 0 THEN\n        code := 'PIN_CHECK_DIGIT';\n")
    new = _swap(new, "r.outcome := CASE WHEN code IN ('PIN_CHECK_DIGIT', 'PIN_UNKNOWN') THEN 'wrong_pin' ELSE 'refused' END;",
                "r.outcome := CASE WHEN code IN ('PIN_CHECK_DIGIT', 'PIN_UNKNOWN') THEN 'wrong_pin'\n"
                "                          WHEN code = 'voucher' THEN 'request_id_reused' ELSE 'refused' END;")
    return old, new


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_functions()[1])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_functions()[0])
