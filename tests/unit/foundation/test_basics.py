"""Small building blocks: YAML marks, settings, identity, paging, numbering, audit, layering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.audit import changed_fields
from engine.errors import InvalidArgument
from engine.identity import Permission, Principal, Role, secret_matches, split_bearer, new_token_secret
from engine.subscriber_numbers import imsi_problem, msisdn_problem, normalise_msisdn
from engine.operator import load_operator
from engine.paging import MAX_PAGE_SIZE, next_token, page_request
from engine.settings import load_settings
from engine.yamlio import Fields, load_text

REPO = Path(__file__).resolve().parents[3]


def test_yaml_problems_are_collected_with_positions() -> None:
    problems: list = []
    doc = load_text("name: a\nname: b\nrates:\n  - 1\nextra: x\n", "p.yaml", problems)
    f = Fields(doc, "plan", problems)
    f.required("name", str)
    f.required("currency", str)
    f.optional("rates", dict)
    f.done()
    got = sorted((p.line, p.col, p.code) for p in problems)
    assert got == [(1, 1, "schema.missing"), (2, 1, "yaml.duplicate-key"), (4, 3, "schema.type"), (5, 1, "schema.unknown-field")]


def test_yaml_syntax_error_has_a_position() -> None:
    problems: list = []
    assert load_text("a: [1, 2\nb: 3\n", "bad.yaml", problems) is None
    assert len(problems) == 1 and problems[0].code == "yaml.syntax" and problems[0].line >= 2


def test_operator_file_negative_fixture_pins_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "operator.yaml"
    bad.write_text(
        "operator:\n  tenant_id: MNO\n  display_name: X\n  currency: EUR\n"
        "mvnos:\n  - tenant_id: mvno-a\n    display_name: A\n    currency: EURO\n"
        "  - tenant_id: mvno-b\n    display_name: B\n    currency: EUR\n    colour: red\n"
    )
    seed, problems = load_operator(bad)
    assert seed is None
    assert [(p.line, p.code) for p in sorted(problems)] == [
        (2, "operator.bad-tenant-id"),
        (8, "operator.bad-currency"),
        (12, "schema.unknown-field"),
    ]


def test_the_shipped_operator_file_is_valid() -> None:
    seed, problems = load_operator(REPO / "plans" / "operator.yaml")
    assert problems == [] and seed is not None
    assert seed.operator.tenant_id == "mno" and len(seed.mvnos) >= 2


def test_settings_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "rulebill.yaml").write_text("listen_address: 0.0.0.0:6000\nmax_workers: 4\n")
    s = load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_MAX_WORKERS": "8"})
    assert (s.listen_address, s.max_workers) == ("0.0.0.0:6000", 8)
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'rulebill.db'}"
    (tmp_path / "rulebill.yaml").write_text("listen_adress: typo\n")
    with pytest.raises(ValueError, match="listen_adress"):
        load_settings({"RULEBILL_HOME": str(tmp_path)})


def test_roles_and_tenant_scope() -> None:
    csr = Principal("c", "mvno-a", Role.CSR)
    assert csr.can(Permission.SUBSCRIBER_WRITE) and not csr.can(Permission.TENANT_WRITE)
    assert not csr.can(Permission.VOUCHER_REVEAL_PIN)
    assert Principal("c", "mvno-a", Role.CSR, privileges=frozenset({"voucher.reveal_pin"})).can(Permission.VOUCHER_REVEAL_PIN)
    assert not csr.can_see_tenant("mvno-b")
    assert Principal("o", "mno", Role.OPERATOR_ADMIN, is_operator=True).can_see_tenant("mvno-b")
    auditor = Principal("a", "mno", Role.AUDITOR)
    assert all(not auditor.can(p) for p in Permission if not p.value.endswith(".read"))


def test_token_format_round_trip() -> None:
    token_id, bearer, secret_hash = new_token_secret()
    tid, secret = split_bearer(bearer)
    assert tid == token_id and secret_matches(secret, secret_hash) and not secret_matches(secret + "x", secret_hash)


@given(st.integers(min_value=0, max_value=5000))
def test_page_size_is_bounded(size: int) -> None:
    assert 1 <= page_request(size, "", "subscribers", str).size <= MAX_PAGE_SIZE


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    page = page_request(2, "", "subscribers", str)
    token = next_token(["a", "b"], page, lambda x: x)
    assert page_request(2, token, "subscribers", str).after == "b"
    assert next_token(["a"], page, lambda x: x) == ""
    with pytest.raises(InvalidArgument):
        page_request(2, "%%%", "subscribers", str)


@given(st.from_regex(r"\+?[1-9][0-9]{7,14}", fullmatch=True))
def test_valid_msisdns_pass(text: str) -> None:
    assert msisdn_problem(normalise_msisdn(text)) is None


@given(st.text(max_size=20))
def test_msisdn_check_never_crashes_and_rejects_non_digits(text: str) -> None:
    problem = msisdn_problem(normalise_msisdn(text))
    if not normalise_msisdn(text).isdigit():
        assert problem is not None


def test_imsi() -> None:
    assert imsi_problem("262011234567890") is None
    assert imsi_problem("26201123456789") and imsi_problem("26201123456789a")


def test_audit_keeps_changed_fields_and_drops_secrets() -> None:
    before, after = changed_fields({"status": "a", "pin": "1234", "name": "x"}, {"status": "b", "pin": "9999", "name": "x"})
    assert before == {"status": "a"} and after == {"status": "b"}


def test_engine_imports_neither_grpc_nor_storage() -> None:
    forbidden = ("grpc", "sqlmodel", "sqlalchemy", "google.protobuf", "billing", "servers", "store", "clients", "psycopg")
    offenders = []
    for path in (REPO / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] in {f.split(".")[0] for f in forbidden} and any(name == f or name.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
