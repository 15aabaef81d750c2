"""A caller cannot write a line of its own into the server log, on SQLite and PostgreSQL over a real port: a token's
subject (written into the access-log line of every call the token makes) with a control character or a line or
paragraph separator is refused with INVALID_ARGUMENT naming ``subject``, and a subject stored before that check is
logged escaped, on its one line."""

from __future__ import annotations

import logging

import grpc
import pytest
from sqlalchemy import text

from billing.v1 import token_pb2 as tpb
from engine.errors import InvalidArgument
from engine.identity import Role
from servers.admin import OneLineFormatter
from tests.integration.conftest import Stack
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_call_lifecycle import AccessLog, access  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
C = grpc.StatusCode
FORGED = "eve: OK in 0.4 ms\n/billing.v1.TokenService/IssueToken by mno/root: OK in 0.2 ms"
# LF, CR, tab, ESC (C0), NEL (C1), LINE SEPARATOR (Zl), PARAGRAPH SEPARATOR (Zp)
BREAKERS = ["\n", "\r", "\t", "\x1b[2K", "\x85", "\u2028", "\u2029"]


def test_a_subject_with_a_control_character_or_a_line_separator_is_refused(stack: Stack) -> None:
    admin = stack.client("mvno-alpha")
    for breaker in BREAKERS:
        err = rpc_error(lambda: admin.tokens.rpc.IssueToken(tpb.IssueTokenRequest(
            subject=f"eve{breaker}forged", tenant_id="mvno-alpha", role=tpb.ROLE_AUDITOR)), C.INVALID_ARGUMENT)
        assert set(field_violations(err)) == {"subject"}, repr(breaker)
    with pytest.raises(InvalidArgument):   # on the server host too (`rulebill token issue`)
        stack.root.tokens.issue(None, FORGED, "mno", Role.AUDITOR)
    # letters of any script and spaces are names
    issued = admin.tokens.rpc.IssueToken(tpb.IssueTokenRequest(subject="Zoë Ñúñez 山田", tenant_id="mvno-alpha",
                                                               role=tpb.ROLE_AUDITOR))
    assert issued.token.subject == "Zoë Ñúñez 山田"


def test_a_stored_subject_with_a_newline_is_logged_escaped_on_its_one_line(stack: Stack, access: AccessLog) -> None:
    token, bearer = stack.root.tokens.issue(None, "eve", "mvno-alpha", Role.AUDITOR)
    with stack.root.db.begin() as conn:   # a subject stored before the check existed
        conn.execute(text("UPDATE api_tokens SET subject = :s WHERE token_id = :t"), {"s": FORGED, "t": token.token_id})
    before = len(access.lines)
    assert stack.client(token=bearer).tokens.whoami().subject == FORGED
    with access._changed:   # the call's line (logged as its handler ends, maybe after the reply reached us)
        assert access._changed.wait_for(lambda: whoami_lines(access, before), 120)
    [line] = whoami_lines(access, before)
    assert line.startswith("/billing.v1.TokenService/WhoAmI by mvno-alpha/eve: OK in 0.4 ms\\n/billing.v1.TokenService/IssueToken")
    assert not any("\n" in logged for logged in access.lines)


def whoami_lines(access: AccessLog, after: int) -> list[str]:
    return [logged for logged in access.lines[after:] if logged.startswith("/billing.v1.TokenService/WhoAmI by ")]


def test_the_server_log_writes_each_message_on_one_line() -> None:
    formatter = OneLineFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("rulebill.vouchers", logging.INFO, __file__, 1, "reservation %s: %s",
                               ("r-1\nINFO rulebill.access: forged\u2028x", "commit"), None)
    assert formatter.format(record) == "INFO rulebill.vouchers: reservation r-1\\nINFO rulebill.access: forged\\u2028x: commit"
    try:
        raise ValueError("boom")
    except ValueError as exc:
        failed = logging.LogRecord("rulebill.server", logging.ERROR, __file__, 1, "internal error in %s", ("a\rb",),
                                   (type(exc), exc, exc.__traceback__))
    first, *trace = formatter.format(failed).split("\n")
    assert first == "ERROR rulebill.server: internal error in a\\rb"
    assert trace[0] == "Traceback (most recent call last):"   # the server's own traceback still follows on its lines
