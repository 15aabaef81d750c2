"""Every `rulebill` command says what it does and how to use it; errors are one line (issue 14, item 8)."""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from clients import cli
from clients.commandkit import Progress
from clients.commands.tokens import audit_summary
from clients.examples import EXAMPLES
from servers.admin import register as admin_commands


def _tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    out = []
    for name, help_text, child in cli.subcommands(parser):
        here = (*path, name)
        out.append((here, help_text, child))
        out.extend(_tree(child, here))
    return out


def test_every_command_and_subcommand_has_a_one_line_help() -> None:
    tree = _tree(cli.build_parser([admin_commands]))
    assert len(tree) > 60
    missing = [" ".join(path) for path, help_text, _ in tree if not help_text]
    assert not missing, f"commands without help: {missing}"
    multiline = [" ".join(path) for path, help_text, _ in tree if help_text and "\n" in help_text]
    assert not multiline


def test_every_server_flag_names_the_lookup_connect_does() -> None:
    """--server falls back to RULEBILL_SERVER, then the server_address setting (clients.client.find_server): every
    command that takes it says so in the one shared wording, the health probe too."""
    tree = _tree(cli.build_parser([admin_commands]))
    flags = {" ".join(path): action.help for path, _, child in tree for action in child._actions if "--server" in action.option_strings}
    assert {"health", "tenants list", "plans what-if", "mediate"} <= set(flags)
    assert not [name for name, text in flags.items() if "RULEBILL_SERVER, else the server_address setting" not in (text or "")]


def test_plans_and_replay_help_say_what_they_do() -> None:
    """`plans what-if` talks to the server unless --active is given; `replay --update` rewrites both kinds of case."""
    tree = {" ".join(path): (help_text, child) for path, help_text, child in _tree(cli.build_parser())}
    plans_help, plans = tree["plans"]
    assert "what-if: against the server" in (plans_help or "") and "what-if: against the server" in plans.format_help()
    update = next(a.help for a in tree["replay"][1]._actions if "--update" in a.option_strings)
    assert "expected.jsonl" in (update or "") and "expected.yaml" in (update or "")


def test_every_leaf_command_has_examples_that_name_it() -> None:
    tree = _tree(cli.build_parser([admin_commands]))
    leaves = {" ".join(path): child for path, _, child in tree if not cli.subcommands(child)}
    assert not sorted(set(leaves) - set(EXAMPLES)), "leaf commands without examples in clients/examples.py"
    assert not sorted(set(EXAMPLES) - set(leaves)), "examples of commands that do not exist"
    for name, child in leaves.items():
        help_text = child.format_help()
        assert "examples:" in help_text and child.description, name
        for example in EXAMPLES[name]:
            assert f"rulebill {name}" in example, (name, example)


# every command whose exit code says an outcome (README, Errors: "the outcome codes of a command, such as 1 for a barred
# call or a refused file, are in its --help"), with the codes its --help must list
OUTCOME_CODES = {
    "health": {0, 1}, "replay": {0, 1}, "mediate": {0, 1, 2}, "tap3 decode": {0, 1, 2}, "rating authorize": {0, 1}, "bills run": {0, 1},
    "plans validate": {0, 1}, "plans compile": {0, 1}, "plans what-if": {0, 1}, "plans import-cgrates": {0, 1},
    **{f"vouchers {name}": {0, 1} for name in ("activate", "block", "unblock", "mark-damaged", "mark-stolen", "recover", "purge", "expire")},
}


def _returned_codes(fn: object, seen: set[object] | None = None) -> set[int]:
    """The integer codes a command function returns: constants, module constants (EXIT_REFUSED), both sides of
    ``a if c else b`` and what a function of its module that it returns the result of returns."""
    seen = set() if seen is None else seen
    if fn in seen or not inspect.isfunction(fn):
        return set()
    seen.add(fn)
    names = fn.__globals__
    out: set[int] = set()

    def add(node: ast.expr) -> None:
        value = node.value if isinstance(node, ast.Constant) else names.get(node.id) if isinstance(node, ast.Name) else None
        if isinstance(value, int) and not isinstance(value, bool):
            out.add(value)
        elif isinstance(node, ast.IfExp):
            add(node.body)
            add(node.orelse)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            out.update(_returned_codes(names.get(node.func.id), seen))

    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(fn)))):
        if isinstance(node, ast.Return) and node.value is not None:
            add(node.value)
    return out


def _exit_codes_listed(help_text: str) -> set[int]:
    assert "exit codes:\n" in help_text
    section = help_text.split("exit codes:\n", 1)[1].split("\n\n", 1)[0]
    return {int(line.split()[0]) for line in section.splitlines()}


def test_every_command_with_outcome_codes_lists_them_in_its_help() -> None:
    leaves = {" ".join(path): child for path, _, child in _tree(cli.build_parser([admin_commands])) if not cli.subcommands(child)}
    assert not sorted(set(OUTCOME_CODES) - set(leaves))
    for name, codes in OUTCOME_CODES.items():
        assert _exit_codes_listed(leaves[name].format_help()) == codes, name


def test_a_command_that_returns_an_outcome_code_says_so() -> None:
    """The guard for the table above: a command function that can return a code other than 0 and the error exit (2)
    is in it, and returns no code its --help does not list."""
    leaves = [(" ".join(path), child) for path, _, child in _tree(cli.build_parser([admin_commands])) if not cli.subcommands(child)]
    read = 0
    for name, child in leaves:
        codes = _returned_codes(child.get_default("func"))
        read += bool(codes)
        if codes - {0, cli.EXIT_ERROR}:
            assert name in OUTCOME_CODES, f"{name} returns {sorted(codes)}: declare set_defaults(exit_codes=...) and add it here"
            assert codes <= OUTCOME_CODES[name] | {0, cli.EXIT_ERROR}, name
    assert read > 30   # the reader sees the command functions (mediate's, replay's, the vouchers' ...)
    assert _returned_codes(leaves[[n for n, _ in leaves].index("mediate")][1].get_default("func")) == {0, 1, 2}


def test_help_shows_description_and_examples() -> None:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli.main(["subscribers", "provision", "--help"], extra_commands=[admin_commands])
    assert exit_.value.code == 0
    text = out.getvalue()
    assert "A new subscriber (status provisioned" in text
    assert "examples:\n  rulebill subscribers provision --tenant mvno-alpha" in text


def test_version() -> None:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert out.getvalue().startswith("rulebill ") and len(out.getvalue().split()) == 2


def test_an_unreadable_settings_file_is_one_line_per_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rulebill.yaml").write_text("max_workers: many\n")
    monkeypatch.setenv("RULEBILL_HOME", str(tmp_path))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["health"]) == cli.EXIT_ERROR
    lines = err.getvalue().splitlines()
    assert lines[0] == "error: invalid settings:" and "rulebill.yaml:1:" in lines[1] and len(lines) == 2


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_off_a_terminal_is_a_few_plain_lines() -> None:
    stream = _Stream(tty=False)
    progress = Progress("generating", stream)
    for done in range(0, 1001):
        progress(done, 1000)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "generating: 0/1000 (0%)" and lines[-1] == "generating: 1000/1000 (100%)" and len(lines) == 11


def test_progress_on_a_terminal_is_one_bar_redrawn() -> None:
    stream = _Stream(tty=True)
    progress = Progress("downloading", stream, unit="bytes")
    for done in (0, 512, 1024):
        progress(done, 1024)
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("100%\n") and text.count("\n") == 1


def test_audit_summary_is_short_and_json_keeps_everything() -> None:
    doc = '{"account_id": "ACC-1001", "address": {"city": "Lyon"}, "create_time": "2026-12-06T09:07:08", "name": "' + "x" * 200 + '"}'
    summary = audit_summary(doc)
    assert summary.startswith("account_id=ACC-1001, name=xxx") and len(summary) == 60 and summary.endswith("…")
    assert "address" not in summary and "create_time" not in summary
    assert audit_summary("") == "" and audit_summary('{"status": "active"}') == "status=active"
