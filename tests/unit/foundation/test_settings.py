"""The one settings object: file with line marks, environment, every problem reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.settings import Settings, SettingsInvalid, load_settings


def _problems(tmp_path: Path, text: str, **env: str) -> list[tuple[str, int, int, str]]:
    (tmp_path / "rulebill.yaml").write_text(text)
    with pytest.raises(SettingsInvalid) as info:
        load_settings({"RULEBILL_HOME": str(tmp_path), **env})
    return [(Path(p.file).name, p.line, p.col, p.code) for p in info.value.problems]


def test_every_problem_of_the_file_is_reported_with_its_place(tmp_path: Path) -> None:
    text = (
        "listen_address: 0.0.0.0:6000\n"
        "max_workers: many\n"          # wrong type
        "listen_adress: typo\n"        # unknown
        "listen_address: twice\n"      # duplicate
        "shutdown_grace_seconds: [1]\n"
    )
    assert _problems(tmp_path, text) == [
        ("rulebill.yaml", 2, 14, "settings.type"),
        ("rulebill.yaml", 3, 1, "settings.unknown"),
        ("rulebill.yaml", 4, 1, "yaml.duplicate-key"),
        ("rulebill.yaml", 5, 25, "settings.type"),
    ]


def test_a_bad_variable_is_reported_with_the_file_problems(tmp_path: Path) -> None:
    found = _problems(tmp_path, "max_workers: 1.5\n", RULEBILL_MAX_MESSAGE_BYTES="lots")
    assert sorted(found) == [("RULEBILL_MAX_MESSAGE_BYTES", 0, 0, "settings.type"), ("rulebill.yaml", 1, 14, "settings.type")]
    with pytest.raises(SettingsInvalid, match="RULEBILL_MAX_MESSAGE_BYTES: settings.type: expected a whole number"):
        load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_MAX_MESSAGE_BYTES": "lots"})


def test_syntax_errors_and_non_mappings_are_located(tmp_path: Path) -> None:
    assert _problems(tmp_path, "listen_address: [unclosed\n")[0][3] == "yaml.syntax"
    assert _problems(tmp_path, "- a list\n") == [("rulebill.yaml", 1, 1, "settings.type")]


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "rulebill.yaml").write_text("max_workers: 4\nshutdown_grace_seconds: 2\nplans_dir: /srv/plans\n")
    s = load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_MAX_WORKERS": "8"})
    assert (s.max_workers, s.shutdown_grace_seconds, s.plans_dir) == (8, 2.0, Path("/srv/plans"))


def test_voucher_keys_and_signing_key_are_settings(tmp_path: Path) -> None:
    s = load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_VOUCHER_MASTER_KEYS": "1:SECRETMASTER", "RULEBILL_VOUCHER_LOOKUP_KEYS": "1:SECRETLOOKUP",
                       "RULEBILL_VOUCHER_MASTER_CURRENT": "1", "RULEBILL_VOUCHER_SIGNING_KEY_FILE": "/etc/rb/sign.asc"})
    assert s.voucher_key_variables() == {
        "RULEBILL_VOUCHER_MASTER_KEYS": "1:SECRETMASTER", "RULEBILL_VOUCHER_MASTER_CURRENT": "1",
        "RULEBILL_VOUCHER_LOOKUP_KEYS": "1:SECRETLOOKUP", "RULEBILL_VOUCHER_LOOKUP_CURRENT": "",
    }
    assert s.effective_voucher_signing_key_file == Path("/etc/rb/sign.asc")
    # key material never shows in a printed settings object
    assert "SECRET" not in repr(s)
    plain = Settings(home=tmp_path)
    assert plain.voucher_key_variables() is None
    assert plain.effective_voucher_signing_key_file == tmp_path / "voucher-signing-key.asc"


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    from dataclasses import fields

    missing = [f.name for f in fields(Settings) if f"`{f.name}`" not in readme]
    assert missing == []


def test_the_event_rules_backend_is_one_of_two_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RULEBILL_EVENT_RULES_BACKEND", raising=False)
    assert Settings(home=tmp_path).event_rules_backend == "compiled"   # the default
    assert load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_EVENT_RULES_BACKEND": "durable_rules"}).event_rules_backend == "durable_rules"
    assert _problems(tmp_path, "event_rules_backend: drools\n") == [("rulebill.yaml", 1, 22, "settings.type")]
    with pytest.raises(SettingsInvalid, match="expected one of compiled, durable_rules, got 'python'"):
        load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_EVENT_RULES_BACKEND": "python"})
    # a Settings built in code (the tests' servers) takes the variable too, as load_settings does
    monkeypatch.setenv("RULEBILL_EVENT_RULES_BACKEND", "durable_rules")
    assert Settings(home=tmp_path).event_rules_backend == "durable_rules"


def test_the_rating_group_bound_is_a_whole_number_within_its_range(tmp_path: Path) -> None:
    from servers.rating_service import RatingServicer

    assert Settings().rating_group_max_cdrs == 20_000
    assert load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_RATING_GROUP_MAX_CDRS": "1"}).rating_group_max_cdrs == 1
    assert sorted(_problems(tmp_path, "rating_group_max_cdrs: 0\n", RULEBILL_RATING_GROUP_MAX_CDRS="200001")) == [
        ("RULEBILL_RATING_GROUP_MAX_CDRS", 0, 0, "settings.type"), ("rulebill.yaml", 1, 24, "settings.type")]
    with pytest.raises(SettingsInvalid, match=r"expected a whole number from 1 to 200,000, got 0"):
        load_settings({"RULEBILL_HOME": str(tmp_path), "RULEBILL_RATING_GROUP_MAX_CDRS": "0"})
    with pytest.raises(ValueError, match="from 1 to 200,000"):   # a Settings built in code reaches the servicer unchecked
        RatingServicer(None, None, 0)  # type: ignore[arg-type]
