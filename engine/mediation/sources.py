"""Sources: the switches and trunk groups files come from, and where each one is.

A layout says what a switch *writes* (columns, formats); a source says where the
switch *is*: the time zone its clock writes local times in and the numbering plan
its users dial by.  Declared in ``rules/mediation/sources.yaml``::

    sources:
      london-pbx:
        description: Asterisk PBX of the London office
        zone: Europe/London
        numbering: {country_code: "44", national_prefix: "0", short_codes: ["999", "112"], extension_max_length: 4}

A file is mediated with a layout and, when the layout needs one (local times, or
numbers without a country code of their own), a source: ``rulebill mediate FILE
--format asterisk --source london-pbx``.  The source's name becomes the CDRs'
``source`` (and so part of their identity): two switches that happen to reuse an
id never collide.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from engine.mediation.conversions.base import zone_of
from engine.mediation.numbering_plan import parse_numbering_overrides
from engine.yamlio import Fields, MarkedMap, Problem, load_file

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SOURCES_FILE = "sources.yaml"


@dataclass(frozen=True)
class Source:
    name: str
    description: str = ""
    zone: str = "UTC"
    numbering: dict[str, Any] = field(default_factory=dict)   # NumberingPlan arguments (overrides)
    known: bool = True        # False: the file named a source that is not declared
    version: str = ""         # digest of the declaration: part of a file's mediation identity

    @classmethod
    def unknown(cls, name: str) -> "Source":
        return cls(name=name, known=False)


def _digest(name: str, zone: str, numbering: dict[str, Any], description: str) -> str:
    data = {"name": name, "zone": zone, "description": description,
            "numbering": {k: sorted(v) if isinstance(v, (frozenset, tuple)) else v for k, v in numbering.items()}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def parse_sources(node: Any, file: str, problems: list[Problem]) -> dict[str, Source]:
    f = Fields(node, "sources file", problems)
    entries: Any = f.required("sources", dict) or MarkedMap()
    f.done()
    out: dict[str, Source] = {}
    for name, spec in entries.items():
        where = f"sources.{name}"
        if not isinstance(name, str) or not SOURCE_NAME.match(name):
            problems.append(Problem.at(entries.key_mark(name), "sources.bad-name",
                                       f"{where}: a source name is 1-64 lower-case letters, digits, '.', '_' or '-'"))
            continue
        s = Fields(spec, where, problems, entries.mark_of(name))
        description = s.optional("description", str, "")
        zone = s.optional("zone", str, "UTC")
        numbering_node = s.optional("numbering", dict)
        s.done()
        try:
            zone_of(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(Problem.at(s.node.mark_of("zone"), "sources.bad-zone", f"{where}: unknown time zone {zone!r}"))
            continue
        numbering = parse_numbering_overrides(numbering_node, file, problems)
        out[name] = Source(name, description, zone, numbering, True, _digest(name, zone, numbering, description))
    return out


def load_sources(directory: Path | str, problems: list[Problem]) -> dict[str, Source]:
    """The sources of a rules directory (none when it has no sources.yaml)."""
    path = Path(directory) / SOURCES_FILE
    if not path.is_file():
        return {}
    node = load_file(path, problems)
    if node is None:
        return {}
    return parse_sources(node, str(path), problems)


def find_source(directory: Path | str, name: str) -> Source | None:
    """The named source, :meth:`Source.unknown` when it is not declared, None when no name is given.

    Raises ``LayoutError`` when sources.yaml itself is broken."""
    if not name:
        return None
    from engine.mediation.problems import LayoutError

    problems: list[Problem] = []
    sources = load_sources(directory, problems)
    if problems:
        raise LayoutError(problems)
    return sources.get(name) or Source.unknown(name)
