"""The locks in requirements/ pin what pyproject.toml asks for, and nothing drifts between them."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _lock_module():  # requirements/lock.py is a script, not a package
    spec = importlib.util.spec_from_file_location("rb_lock", REPO / "requirements" / "lock.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pins(lock: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def test_locks_were_resolved_from_todays_pyproject() -> None:
    assert _lock_module().check() == []


def test_the_check_fails_when_pyproject_dependencies_change(tmp_path: Path, monkeypatch) -> None:
    lock = _lock_module()
    changed = tmp_path / "pyproject.toml"
    changed.write_text((REPO / "pyproject.toml").read_text().replace('"lxml>=5.0"', '"lxml>=5.1"'))
    monkeypatch.setattr(lock, "PYPROJECT", changed)
    problems = lock.check()
    assert len(problems) == 3 and all("does not match pyproject.toml" in p for p in problems)


def test_every_dependency_is_pinned_within_its_range_and_hashed() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    run, test = pins(REPO / "requirements" / "run.lock"), pins(REPO / "requirements" / "test.lock")
    for text, lock in [(r, run) for r in project["dependencies"]] + \
                      [(r, test) for r in project["dependencies"] + project["optional-dependencies"]["test"]]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is in pyproject.toml but not locked"
        assert req.specifier.contains(lock[name], prereleases=True), f"{name}=={lock[name]} is outside {req.specifier}"
    for lock in ("run.lock", "test.lock"):
        body = (REPO / "requirements" / lock).read_text()
        assert body.count("==") <= body.count("--hash=sha256:"), f"{lock}: a pin without a hash"


def test_the_server_runs_on_the_versions_the_tests_ran_on() -> None:
    run, test = pins(REPO / "requirements" / "run.lock"), pins(REPO / "requirements" / "test.lock")
    assert run, "run.lock pins nothing"
    assert {n: v for n, v in test.items() if n in run} == run


def test_stub_generator_is_the_locked_one() -> None:
    from importlib.metadata import version

    test = pins(REPO / "requirements" / "test.lock")
    assert version("grpcio-tools") == test["grpcio-tools"], "install from requirements/test.lock (make test)"


def _hashes(lock: Path) -> dict[str, set[str]]:
    """Each package's hashes in a requirements-style lock."""
    found: dict[str, set[str]] = {}
    name = ""
    for line in lock.read_text(encoding="utf-8").splitlines():
        if m := PIN.match(line):
            name = canonicalize_name(m.group(1))
        found.setdefault(name, set()).update(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return found


def test_pylock_toml_is_the_test_lock_in_the_standard_format() -> None:
    standard = tomllib.loads((REPO / "pylock.toml").read_text(encoding="utf-8"))
    assert standard["lock-version"] == "1.0"
    versions = {canonicalize_name(p["name"]): p["version"] for p in standard["packages"]}
    assert versions == pins(REPO / "requirements" / "test.lock")
    files: dict[str, set[str]] = {}
    for p in standard["packages"]:
        artefacts = p.get("wheels", []) + ([p["sdist"]] if "sdist" in p else [])
        files[canonicalize_name(p["name"])] = {a["hashes"]["sha256"] for a in artefacts}
    test_hashes = _hashes(REPO / "requirements" / "test.lock")
    assert all(files[name] and files[name] <= test_hashes[name] for name in files), "pylock.toml names a file test.lock does not"
