"""0003_token_approval, down and up on each database with rows present: a token stored before it keeps working (it was
issued under the one-officer rule), and a downgrade revokes the dual-control tokens, which the old schema would let
work with the issuer's half alone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from engine.clock import FixedClock
from engine.errors import Unauthenticated
from engine.identity import Role, TokenApproval, hash_secret
from engine.settings import Settings
from servers.root import token_administration
from store.db import make_engine
from store.migrate import alembic_config, upgrade

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
NEW_COLUMNS = {"approval", "issued_by", "issued_by_token", "approval_expire_time", "decided_by", "decided_by_token", "decide_time",
               "approval_hash"}


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns("api_tokens")}
    finally:
        engine.dispose()


def _execute(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def test_old_tokens_keep_working_and_a_downgrade_revokes_dual_control_tokens(db_url: str, tmp_path: Path) -> None:
    command.downgrade(alembic_config(db_url), "0002_subscriber_controls")
    assert not NEW_COLUMNS & _columns(db_url)
    _execute(db_url, "INSERT INTO tenants (tenant_id, display_name, kind, status, parent_tenant_id, currency, create_time, update_time) "
                     "VALUES ('mno', 'Op', 'mno', 'active', '', 'EUR', :t, :t)", t=T0)
    # an officer's reveal token issued under the old rule, as the old code stored it
    _execute(db_url, "INSERT INTO api_tokens (token_id, subject, tenant_id, role, secret_hash, privileges, create_time, expire_time) "
                     "VALUES ('old0000000000001', 'print-desk', 'mno', 'csr', :h, 'voucher.reveal_pin', :t, :e)",
             h=hash_secret("oldsecret"), t=T0, e=T0 + timedelta(days=30))

    upgrade(db_url)
    assert NEW_COLUMNS <= _columns(db_url)
    settings = Settings(home=tmp_path, database_url=db_url)
    clock = FixedClock(T0 + timedelta(hours=1))
    with token_administration(settings, clock) as tokens:
        old = tokens.authenticate("rbt_old0000000000001_oldsecret")
        assert (old.subject, old.privileges) == ("print-desk", {"voucher.reveal_pin"})
        alice = tokens.authenticate(tokens.issue_security_officer("alice")[1])
        bob = tokens.authenticate(tokens.issue_security_officer("bob")[1])
        pending, pending_half = tokens.issue(alice, "waiting-desk", "mno", Role.CSR, privileges=frozenset({"voucher.reveal_pin"}))
        approved, first = tokens.issue(alice, "approved-desk", "mno", Role.CSR, privileges=frozenset({"voucher.reveal_pin"}))
        _, second = tokens.approve(bob, approved.token_id)
        assert tokens.authenticate(f"{first}.{second}").subject == "approved-desk"
    rows_before = _execute(db_url, "SELECT token_id, subject, secret_hash, privileges FROM api_tokens ORDER BY token_id")

    command.downgrade(alembic_config(db_url), "0002_subscriber_controls")
    assert not NEW_COLUMNS & _columns(db_url)
    assert _execute(db_url, "SELECT token_id, subject, secret_hash, privileges FROM api_tokens ORDER BY token_id") == rows_before
    revoked = {r[0] for r in _execute(db_url, "SELECT token_id FROM api_tokens WHERE revoke_time IS NOT NULL")}
    assert revoked == {pending.token_id, approved.token_id}

    upgrade(db_url)
    assert _execute(db_url, "SELECT token_id, subject, secret_hash, privileges FROM api_tokens ORDER BY token_id") == rows_before
    with token_administration(settings, clock) as tokens:
        assert tokens.authenticate("rbt_old0000000000001_oldsecret").subject == "print-desk"
        for bearer in (pending_half, first):   # the issuer's half alone never became a working token
            with pytest.raises(Unauthenticated, match="revoked"):
                tokens.authenticate(bearer)
        with tokens._uow(read_only=True) as uow:
            assert uow.tokens.get(pending.token_id).approval is TokenApproval.NOT_REQUIRED  # type: ignore[union-attr]
