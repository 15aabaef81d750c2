"""Key sources for voucher crypto: a 0600 key file or the environment, never the repository.

This module parses and builds them; reading and writing the key file is ``servers/adapters/keyring_file.py``'s.

Key file (JSON)::

    {"format": "rulebill-voucher-keyring/1",
     "master": {"current": 2, "keys": {"1": "<base64 32 bytes>", "2": "..."}},
     "lookup": {"current": 1, "keys": {"1": "<base64 32 bytes>"}}}

Environment::

    RULEBILL_VOUCHER_MASTER_KEYS="1:<base64>,2:<base64>"   RULEBILL_VOUCHER_MASTER_CURRENT=2
    RULEBILL_VOUCHER_LOOKUP_KEYS="1:<base64>"              RULEBILL_VOUCHER_LOOKUP_CURRENT=1

Errors name the file or variable and never print key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any, Callable, Mapping

from engine.vouchers.crypto import KeyUnavailable

KEYRING_FORMAT = "rulebill-voucher-keyring/1"
KEY_BYTES = 32


class KeyringError(ValueError):
    """The key source is unusable; the message says where and why (never the key)."""


def _decode_key(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise KeyringError(f"{where}: expected a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyringError(f"{where}: not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{where}: a key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


class StaticKeyProvider:
    """Keys held in memory (the file and environment providers build one; tests use it directly)."""

    def __init__(self, master: Mapping[int, bytes], master_current: int, lookup: Mapping[int, bytes], lookup_current: int,
                 source: str = "memory") -> None:
        if master_current not in master:
            raise KeyringError(f"{source}: current master key version {master_current} is not among the keys")
        if lookup_current not in lookup:
            raise KeyringError(f"{source}: current lookup key version {lookup_current} is not among the keys")
        self._master = dict(master)
        self._lookup = dict(lookup)
        self._master_current = master_current
        self._lookup_current = lookup_current
        self.source = source

    @classmethod
    def random(cls) -> "StaticKeyProvider":
        return cls({1: os.urandom(KEY_BYTES)}, 1, {1: os.urandom(KEY_BYTES)}, 1)

    def current_master_version(self) -> int:
        return self._master_current

    def master_key(self, version: int) -> bytes:
        try:
            return self._master[version]
        except KeyError:
            raise KeyUnavailable("master", version) from None

    def current_lookup_version(self) -> int:
        return self._lookup_current

    def lookup_key(self, version: int) -> bytes:
        try:
            return self._lookup[version]
        except KeyError:
            raise KeyUnavailable("lookup", version) from None

    def lookup_versions(self) -> list[int]:
        return sorted(self._lookup)

    def master_versions(self) -> list[int]:
        return sorted(self._master)


def _section(doc: Mapping[str, Any], name: str, where: str) -> tuple[dict[int, bytes], int]:
    part = doc.get(name)
    if not isinstance(part, dict) or not isinstance(part.get("keys"), dict) or not isinstance(part.get("current"), int):
        raise KeyringError(f"{where}: '{name}' must be a mapping with 'current' (integer) and 'keys'")
    keys: dict[int, bytes] = {}
    for version, text in part["keys"].items():
        try:
            v = int(version)
        except ValueError:
            raise KeyringError(f"{where}: {name} key version {version!r} is not an integer") from None
        keys[v] = _decode_key(text, f"{where}: {name}.keys.{version}")
    return keys, part["current"]


def keyring_from_document(doc: Any, where: str) -> StaticKeyProvider:
    """The keys of a parsed key file (``where`` names it in errors; never a key)."""
    if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
        raise KeyringError(f"{where}: not a voucher keyring (expected format {KEYRING_FORMAT!r})")
    master, master_current = _section(doc, "master", where)
    lookup, lookup_current = _section(doc, "lookup", where)
    return StaticKeyProvider(master, master_current, lookup, lookup_current, source=where)


def new_keyring_document() -> dict[str, Any]:
    """A key file's content with one random master and one random lookup key."""
    return {
        "format": KEYRING_FORMAT,
        "master": {"current": 1, "keys": {"1": _b64(os.urandom(KEY_BYTES))}},
        "lookup": {"current": 1, "keys": {"1": _b64(os.urandom(KEY_BYTES))}},
    }


def with_new_master_key(doc: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The key file's content with a new master key version made current (step 1 of a rotation), and that version."""
    out = json.loads(json.dumps(doc))
    version = max(int(v) for v in out["master"]["keys"]) + 1
    out["master"]["keys"][str(version)] = _b64(os.urandom(KEY_BYTES))
    out["master"]["current"] = version
    return out, version


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _parse_env_keys(value: str, var: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        version, sep, text = item.partition(":")
        if not sep or not version.strip().isdigit():
            raise KeyringError(f"{var}: each item must be '<version>:<base64 key>'")
        keys[int(version)] = _decode_key(text.strip(), f"{var} version {version.strip()}")
    if not keys:
        raise KeyringError(f"{var}: no keys")
    return keys


def keys_from_environment(env: Mapping[str, str]) -> StaticKeyProvider:
    """The keys given as ``RULEBILL_VOUCHER_*`` variables in ``env`` (the caller reads the process environment)."""
    found: dict[str, tuple[dict[int, bytes], int]] = {}
    for kind in ("MASTER", "LOOKUP"):
        var = f"RULEBILL_VOUCHER_{kind}_KEYS"
        if not env.get(var):
            raise KeyringError(f"{var} is not set")
        keys = _parse_env_keys(env[var], var)
        current_var = f"RULEBILL_VOUCHER_{kind}_CURRENT"
        current_text = env.get(current_var, "")
        if current_text and not current_text.isdigit():
            raise KeyringError(f"{current_var}: must be a version number")
        found[kind] = (keys, int(current_text) if current_text else max(keys))
    (master, mc), (lookup, lc) = found["MASTER"], found["LOOKUP"]
    return StaticKeyProvider(master, mc, lookup, lc, source="environment")


class ReloadableKeyProvider:
    """Delegates to a provider that can be re-read (after ``add_master_key`` or a changed environment)."""

    def __init__(self, load: Callable[[], StaticKeyProvider], add_master: Callable[[], int] | None = None) -> None:
        self._load = load
        self._add_master = add_master  # adds a master key to the key file, when keys come from one
        self._current = load()

    @property
    def from_key_file(self) -> bool:
        return self._add_master is not None

    def reload(self) -> None:
        self._current = self._load()

    def add_master_key(self) -> int:
        """Add a new master key version to the key file and make it current (only when keys come from a file)."""
        if self._add_master is None:
            raise KeyringError("keys do not come from a key file: a new master key cannot be added here")
        version = self._add_master()
        self.reload()
        return version

    def current_master_version(self) -> int:
        return self._current.current_master_version()

    def master_key(self, version: int) -> bytes:
        return self._current.master_key(version)

    def current_lookup_version(self) -> int:
        return self._current.current_lookup_version()

    def lookup_key(self, version: int) -> bytes:
        return self._current.lookup_key(version)

    def lookup_versions(self) -> list[int]:
        return self._current.lookup_versions()
