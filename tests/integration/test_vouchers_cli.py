"""The `rulebill vouchers ...` commands against a real server."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from clients.cli import main
from tests.unit.vouchers.gpgkeys import GPG, gpg, make_key, stop_agent

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]


def run(stack: Any, capsys: pytest.CaptureFixture[str], *argv: str, token: str | None = None) -> tuple[int, str, str]:
    code = main(["vouchers", *argv, "--server", stack.address, "--token", token or stack.token("mno")])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_list_change_redeem(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(stack, capsys, "generate", "vp-mno-eur-5", "30", "--dealer", "kiosk-1", "--json")
    assert code == 0
    batch = json.loads(out)
    assert (batch["count"], batch["dealer"], batch["state"]) == ("30", "kiosk-1", "BATCH_STATE_GENERATED")
    code, out, _ = run(stack, capsys, "show", batch["batch_id"])
    assert code == 0 and batch["batch_id"] in out
    code, out, _ = run(stack, capsys, "batch", "activate", batch["batch_id"], "--json")
    assert json.loads(out)["state"] == "BATCH_STATE_ACTIVE"
    first = int(batch["first_serial"])
    code, out, _ = run(stack, capsys, "block", "--serials", f"{first}-{first + 4}", "--json")
    assert code == 0 and json.loads(out)["changed_count"] == "5"
    code, out, _ = run(stack, capsys, "unblock", "--batch", batch["batch_id"], "--json")
    assert code == 1 and json.loads(out)["refused_count"] == "25"  # refusals are reported and give exit code 1
    code, out, _ = run(stack, capsys, "list", "--batch", batch["batch_id"])
    assert code == 0 and f"MN{first:010d}" in out and "PIN" not in out.splitlines()[0]
    reveal = stack.token("mno", privileges=("voucher.reveal_pin",))
    code, out, _ = run(stack, capsys, "list", "--serials", str(first), "--reveal", "--json", token=reveal)
    [row] = json.loads(out)
    assert len(row["pin"]) == 16
    from tests.integration.test_vouchers import subscriber

    msisdn = subscriber(stack)
    code, out, _ = run(stack, capsys, "redeem", msisdn, row["pin"], "--request-id", f"cli-{msisdn}", "--json",
                       token=stack.token("mno", "csr"))
    assert code == 0 and json.loads(out)["credited"]["amount_micros"] == "5000000"
    code, _, err = run(stack, capsys, "redeem", msisdn, row["pin"], "--request-id", f"cli2-{msisdn}", token=stack.token("mno", "csr"))
    assert code == 2 and "FAILED_PRECONDITION" in err and row["pin"] not in err
    code, out, _ = run(stack, capsys, "rotate-keys", "--json")
    assert code == 0 and "master_key_version" in out


def test_bad_profile_is_one_line_error(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(stack, capsys, "generate", "vp-nope", "5")
    assert code == 2 and err.startswith("error: NOT_FOUND")


@pytest.mark.skipif(not os.path.exists(GPG), reason="gpg binary not installed")
def test_export_through_the_cli_decrypts_with_gpg(stack: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipient = make_key(tmp_path / "r", "Printer <p@example.test>")
    operator = make_key(tmp_path / "o", "Operator <o@example.test>")
    try:
        signing = Path(stack.root.vouchers.sealing.signing_key_file)
        signing.write_bytes(operator.secret_key)
        os.chmod(signing, 0o600)
        (tmp_path / "recipient.asc").write_bytes(recipient.public_key)
        code, out, _ = run(stack, capsys, "generate", "vp-mno-usd-20", "12", "--json")
        batch = json.loads(out)
        first = int(batch["first_serial"])
        run(stack, capsys, "mark-stolen", "--serials", str(first))  # the lifecycle keeps stolen vouchers out of files
        target = tmp_path / "out.gpg"
        reveal = stack.token("mno", privileges=("voucher.reveal_pin",))
        code, out, err = run(stack, capsys, "export", "--batch", batch["batch_id"], "--recipient-key", str(tmp_path / "recipient.asc"),
                             "-o", str(target), "--json", token=reveal)
        assert code == 0, err
        receipt = json.loads(out)
        assert receipt["count"] == "11" and receipt["recipient_fingerprint"] == recipient.fingerprint
        assert [(g["state"], g["count"]) for g in receipt["left_out"]] == [("VOUCHER_STATE_STOLEN", "1")]
        assert gpg(recipient.home, "--import", stdin=operator.public_key).returncode == 0
        result = gpg(recipient.home, "--status-fd", "2", "--decrypt", str(target))
        assert result.returncode == 0 and b"GOODSIG" in result.stderr
        text = result.stdout.decode()
        assert "# count: 11\n# face_value_total: USD 220.00\n" in text and f"MU{first:010d}" not in text
        bad = tmp_path / "bad.asc"
        bad.write_text("not a key")
        code, _, err = run(stack, capsys, "export", "--batch", batch["batch_id"], "--recipient-key", str(bad), "-o",
                           str(tmp_path / "bad.gpg"), token=reveal)
        assert code == 2 and "recipient_public_key" in err and not (tmp_path / "bad.gpg").exists()
    finally:
        stop_agent(recipient.home)
        stop_agent(operator.home)
        shutil.rmtree(tmp_path / "r", ignore_errors=True)


def test_the_readme_voucher_commands_match_the_cli() -> None:
    """Issue #14 item 3: every `rulebill vouchers ...` (and the reveal-privilege steps) in the README's Vouchers
    section parses with the real command line, flags and positionals as written."""
    import re
    import shlex

    from clients.cli import build_parser
    from servers import admin

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Vouchers (VoMS)"):readme.index("## Layout")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            commands += re.findall(r"rulebill ((?:vouchers|security-officer|tokens issue)[^|>)#]*)", line)
    assert len(commands) >= 12, commands
    parser = build_parser([admin.register])  # `rulebill` = the client commands + the server-side ones
    for command in commands:
        argv = [a.replace("$", "") for a in shlex.split(command)]
        try:
            parser.parse_args(argv)
        except SystemExit:
            raise AssertionError(f"README command does not parse: rulebill {command}") from None
