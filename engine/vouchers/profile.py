"""Voucher profiles: the voucher types a product team declares in ``plans/vouchers/*.yaml``.

A file holds the profiles of one owner tenant::

    profiles:
      - id: vp-mno-eur-10
        name: Top-up EUR 10
        owner: mno
        currency: EUR
        face_value: "10.00"          # decimal text, never a float
        validity_days: 365           # how long the voucher itself can be redeemed
        recharge_extension_days: 30  # added to the subscriber's validity on recharge
        pin_length: 16               # printed digits, the last one a Luhn check digit
        serial: {prefix: "MN", digits: 10}

Every problem of every file is collected and reported as ``file:line:col: code: message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from engine.tenancy import TENANT_ID
from engine.vouchers.face_value import FaceValueError, parse_face_value
from engine.vouchers.pins import DEFAULT_PIN_LENGTH, MAX_PIN_LENGTH, MIN_PIN_LENGTH
from engine.yamlio import Fields, MarkedList, MarkedMap, Mark, Problem, load_file, load_text, yaml_files

PROFILE_ID = re.compile(r"^vp-[a-z0-9]+(-[a-z0-9]+)*$")
SERIAL_PREFIX = re.compile(r"^[A-Z0-9]{0,8}$")
MAX_VALIDITY_DAYS = 3650
MIN_SERIAL_DIGITS, MAX_SERIAL_DIGITS = 6, 18


@dataclass(frozen=True)
class SerialFormat:
    """Printed serial = prefix + zero-padded number; the number is one operator-wide sequence."""

    prefix: str
    digits: int

    def format(self, serial: int) -> str:
        return f"{self.prefix}{serial:0{self.digits}d}"

    @property
    def max_serial(self) -> int:
        return 10**self.digits - 1

    def parse(self, text: str) -> int | None:
        """The serial number of a printed serial, or None when it does not have this format."""
        if not text.startswith(self.prefix):
            return None
        number = text[len(self.prefix):]
        if len(number) != self.digits or not (number.isascii() and number.isdigit()):
            return None
        return int(number)


@dataclass(frozen=True)
class VoucherProfile:
    profile_id: str
    name: str
    owner: str
    currency: str
    face_value_micros: int
    validity_days: int
    recharge_extension_days: int
    pin_length: int
    serial: SerialFormat
    description: str = ""
    source: str = ""  # file:line of the definition, for messages


_PROFILE_FIELDS = "profile"


def _check_days(f: Fields, key: str, minimum: int, problems: list[Problem], default: int | None = None) -> int:
    value = f.required(key, int) if default is None else f.optional(key, int, default)
    if value is None:
        return 0
    if not minimum <= value <= MAX_VALIDITY_DAYS:
        problems.append(Problem.at(f.node.mark_of(key), "profile.range", f"{key} must be {minimum}..{MAX_VALIDITY_DAYS} days, got {value}"))
    return int(value)


def _parse_profile(node: Any, problems: list[Problem], fallback: Mark) -> VoucherProfile | None:
    before = len(problems)
    f = Fields(node, _PROFILE_FIELDS, problems, fallback)
    if not f.ok:
        return None
    profile_id = f.required("id", str)
    name = f.required("name", str)
    description = f.optional("description", str, "")
    owner = f.required("owner", str)
    currency = f.required("currency", str)
    face_value = f.required("face_value", (str, int, float))
    validity_days = _check_days(f, "validity_days", 1, problems)
    extension_days = _check_days(f, "recharge_extension_days", 0, problems)
    pin_length = f.optional("pin_length", int, DEFAULT_PIN_LENGTH)
    serial_node = f.required("serial", dict)
    f.done()

    if profile_id is not None and not PROFILE_ID.match(profile_id):
        problems.append(Problem.at(f.node.mark_of("id"), "profile.id", f"profile id {profile_id!r} must look like 'vp-<lowercase-words>'"))
    if name is not None and not name.strip():
        problems.append(Problem.at(f.node.mark_of("name"), "profile.name", "name must not be empty"))
    if owner is not None and not TENANT_ID.match(owner):
        problems.append(Problem.at(f.node.mark_of("owner"), "profile.owner", f"owner {owner!r} is not a tenant id"))
    micros = 0
    if currency is not None:
        if isinstance(face_value, float):
            problems.append(Problem.at(f.node.mark_of("face_value"), "money.type",
                                       f"face_value must be quoted decimal text, e.g. \"{face_value}\" (a YAML float is inexact)"))
        elif face_value is not None:
            try:
                micros = parse_face_value(face_value, currency)
            except FaceValueError as exc:
                key = "currency" if exc.code == "currency.unknown" else "face_value"
                problems.append(Problem.at(f.node.mark_of(key), exc.code, str(exc)))
    if pin_length is not None and not MIN_PIN_LENGTH <= pin_length <= MAX_PIN_LENGTH:
        problems.append(Problem.at(f.node.mark_of("pin_length"), "profile.pin-length",
                                   f"pin_length must be {MIN_PIN_LENGTH}..{MAX_PIN_LENGTH} digits (check digit included), got {pin_length}"))
    serial = None
    if serial_node is not None:
        sf = Fields(serial_node, "profile.serial", problems)
        prefix = sf.optional("prefix", str, "")
        digits = sf.required("digits", int)
        sf.done()
        if prefix is not None and not SERIAL_PREFIX.match(prefix):
            problems.append(Problem.at(serial_node.mark_of("prefix"), "profile.serial-prefix",
                                       f"serial prefix {prefix!r} must be 0..8 characters A-Z or 0-9"))
        if digits is not None and not MIN_SERIAL_DIGITS <= digits <= MAX_SERIAL_DIGITS:
            problems.append(Problem.at(serial_node.mark_of("digits"), "profile.serial-digits",
                                       f"serial digits must be {MIN_SERIAL_DIGITS}..{MAX_SERIAL_DIGITS}, got {digits}"))
        elif digits is not None and prefix == "" and digits == pin_length:
            # a bare serial as long as the PIN invites people to type the serial as a PIN
            problems.append(Problem.at(serial_node.mark, "profile.serial-like-pin",
                                       "a serial without prefix must not have as many digits as the PIN"))
        if prefix is not None and digits is not None:
            serial = SerialFormat(prefix, digits)
    if len(problems) > before or serial is None:
        return None
    return VoucherProfile(
        profile_id=profile_id, name=name.strip(), owner=owner, currency=currency, face_value_micros=micros,
        validity_days=validity_days, recharge_extension_days=extension_days, pin_length=pin_length, serial=serial,
        description=description or "", source=f"{f.mark.file}:{f.mark.line}",
    )


def _parse_document(doc: Any, file: str, problems: list[Problem]) -> list[tuple[VoucherProfile, Mark]]:
    if doc is None:
        return []
    top = Fields(doc, "voucher profile file", problems, Mark(file, 1, 1))
    items = top.required("profiles", list)
    top.done()
    found: list[tuple[VoucherProfile, Mark]] = []
    if not isinstance(items, MarkedList):
        return found
    for index, item in enumerate(items):
        profile = _parse_profile(item, problems, items.mark_of(index))
        if profile is not None:
            id_mark = item.mark_of("id") if isinstance(item, MarkedMap) else items.mark_of(index)
            found.append((profile, id_mark))
    return found


@dataclass(frozen=True)
class ProfileCatalogue:
    profiles: dict[str, VoucherProfile]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def get(self, profile_id: str) -> VoucherProfile | None:
        return self.profiles.get(profile_id)


def _collect(documents: Iterable[tuple[Any, str]], problems: list[Problem], known_tenants: set[str] | None) -> ProfileCatalogue:
    profiles: dict[str, VoucherProfile] = {}
    first_seen: dict[str, Mark] = {}
    for doc, file in documents:
        for profile, mark in _parse_document(doc, file, problems):
            if profile.profile_id in profiles:
                first = first_seen[profile.profile_id]
                problems.append(Problem.at(mark, "profile.duplicate-id",
                                           f"profile {profile.profile_id} is already defined at {first.file}:{first.line}"))
                continue
            if known_tenants is not None and profile.owner not in known_tenants:
                problems.append(Problem.at(mark, "profile.unknown-owner", f"owner tenant {profile.owner!r} does not exist"))
                continue
            profiles[profile.profile_id] = profile
            first_seen[profile.profile_id] = mark
    return ProfileCatalogue(profiles, sorted(problems))


def load_profiles(paths: Iterable[Path | str], known_tenants: set[str] | None = None, root: Path | None = None) -> ProfileCatalogue:
    """Load every ``*.yaml`` under ``paths``; ``root`` makes reported file names relative."""
    problems: list[Problem] = []
    documents = []
    for path in yaml_files(paths):
        display = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
        documents.append((load_file(path, problems, display), display))
    return _collect(documents, problems, known_tenants)


def load_profiles_text(text: str, file: str = "<text>", known_tenants: set[str] | None = None) -> ProfileCatalogue:
    problems: list[Problem] = []
    return _collect([(load_text(text, file, problems), file)], problems, known_tenants)
