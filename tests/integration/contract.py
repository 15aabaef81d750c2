"""What every store contract test shares: a scenario is a list of named steps run against one store; each step's
answer (or the domain error it raised, by type and reason) is recorded, and the records of the in-memory fake,
SQLite and PostgreSQL must be the same, step by step."""

from __future__ import annotations

from typing import Any, Callable

from engine.errors import DomainError


class Steps:
    """Run named steps, recording what each answered; a DomainError is an answer too (its type, reason and resource type)."""

    def __init__(self) -> None:
        self.out: list[tuple[str, Any]] = []

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except DomainError as exc:
            value = (type(exc).__name__, getattr(exc, "reason", ""), getattr(exc, "resource_type", ""))
        self.out.append((name, value))
        return value


class Units:
    """Steps as units of work of one store: ``write(fn)`` runs ``fn(unit)`` and commits, ``read(fn)`` runs it in a
    read-only unit; both return the step for :class:`Steps`."""

    def __init__(self, uow: Callable[..., Any]) -> None:
        self.uow = uow

    def write(self, fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self.uow() as unit:
                value = fn(unit)
                unit.commit()
            return value
        return run

    def read(self, fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self.uow(read_only=True) as unit:
                return fn(unit)
        return run


def assert_same(expected: list[tuple[str, Any]], got: list[tuple[str, Any]], store: str) -> None:
    """Step by step: a failure names every step where ``store`` answers otherwise than the fake, with both answers."""
    assert [name for name, _ in got] == [name for name, _ in expected]
    differ = [f"{name}:\n  fake:  {want!r}\n  {store}: {have!r}" for (name, want), (_, have) in zip(expected, got) if have != want]
    assert not differ, f"{len(differ)} step(s) differ:\n" + "\n".join(differ)


def reference_sqlite(tmp_path: Any) -> str:
    """A fresh, migrated SQLite database: the reference a PostgreSQL run is compared with where there is no fake."""
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'reference.db'}"
    upgrade(url)
    return url
