"""`rulebill accounts|bills|invoices` against a real server: the commands an operator types."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from clients.cli import main
from tests.integration.billing_support import BillingStack, billing_stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc


def cli(stack: BillingStack, capsys: pytest.CaptureFixture[str], *args: str, role: str = "") -> tuple[int, str, str]:
    code = main([*args, "--server", stack.address, "--token", stack.token("mno", role)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_operator_bills_from_the_command_line(billing_stack: BillingStack, capsys: pytest.CaptureFixture[str],  # noqa: F811
                                                 tmp_path: Path) -> None:
    s = billing_stack
    code, out, _ = cli(s, capsys, "accounts", "create", "CLI-1", "--name", "Camille Roux", "--street", "8 quai du Rhône", "--city", "Lyon",
                       "--postal-code", "69007", "--country", "fr", "--anchor-day", "15", "--language", "fr")
    assert code == 0 and "CLI-1" in out and "15" in out
    code, _, err = cli(s, capsys, "accounts", "create", "CLI-2", "--name", "X", "--anchor-day", "32")
    assert code == 2 and "anchor_day" in err and "1..31" in err
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 20, 8, 0, tzinfo=UTC))
    assert cli(s, capsys, "accounts", "assign", "CLI-1", sub)[0] == 0
    code, out, _ = cli(s, capsys, "accounts", "charge", "CLI-1", "OC_ACTIVATION", "--date", "2026-02-20")
    assert code == 0 and "OC_ACTIVATION" in out
    s.rate("mno", msisdn, [(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), 240, "33140000000")])
    s.at(datetime(2026, 3, 16, 8, 0, tzinfo=UTC))
    code, out, _ = cli(s, capsys, "bills", "preview", "CLI-1", "--html", str(tmp_path / "p.html"))
    assert code == 0 and "PREVIEW for CLI-1, period 2026-02-15 to 2026-03-14" in out and "amount due" in out
    assert "Frais d'activation" not in out and "Activation fee" in out
    code, out, _ = cli(s, capsys, "bills", "run", "--dry-run", "--cycle-date", "2026-03-15", role="product_manager")
    assert code == 0 and "dry run" in out and "1 would be issued" in out
    code, out, _ = cli(s, capsys, "bills", "run", "--cycle-date", "2026-03-15")
    assert code == 0 and "1 issued" in out, out
    code, out, _ = cli(s, capsys, "bills", "list", "--account", "CLI-1")
    assert code == 0 and "RT-" in out and "ISSUED" in out
    number = [w for w in out.split() if w.startswith("RT-")][0]
    code, out, _ = cli(s, capsys, "bills", "show", number)
    assert code == 0 and "Activation fee" in out and "Frais" not in out
    for fmt, magic in (("xml", b"<?xml"), ("pdf", b"%PDF"), ("html", b"<!DOCTYPE html>")):
        target = tmp_path / f"bill.{fmt}"
        code, out, _ = cli(s, capsys, "bills", "download", number, "--format", fmt, "-o", str(target))
        assert code == 0 and target.read_bytes().startswith(magic)
    code, out, err = cli(s, capsys, "invoices", "credit-note", number, "--reason", "goodwill", "--line", "1=1.00", role="csr")
    assert code == 0 and "RT-CN-" in out, err
    code, out, _ = cli(s, capsys, "invoices", "pay", number, "--amount", "5.00", "--reference", "sepa-77")
    assert code == 0 and "PARTIALLY_PAID" in out
    code, _, err = cli(s, capsys, "bills", "run", "--now", "--account", "CLI-1")
    assert code == 2 and "PERIOD_ALREADY_BILLED" not in err and "billed until 2026-03-15" in err
