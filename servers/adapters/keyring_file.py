"""The voucher key file on disk: read it (refusing one that group or others may read), create it, rotate its master
key.  The keys' format and checks are ``engine.vouchers.keyring``'s; this module only does the file's I/O.

Errors name the file and never print key material.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from engine.vouchers.keyring import (
    KeyringError,
    ReloadableKeyProvider,
    StaticKeyProvider,
    keyring_from_document,
    new_keyring_document,
    with_new_master_key,
)


def _read_document(path: Path, require_private: bool) -> Any:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyringError(f"{path}: cannot read key file ({exc.strerror})") from None
    if require_private and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringError(f"{path}: key file must not be accessible by group or others (chmod 600 {path})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyringError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON") from None


def load_keyring(path: Path | str, require_private: bool = True) -> StaticKeyProvider:
    """Read a key file; refuse one that group or others may read."""
    path = Path(path)
    return keyring_from_document(_read_document(path, require_private), str(path))


def _write_private(path: Path, doc: Mapping[str, Any], exclusive: bool) -> None:
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return
    # replace atomically: write a private sibling, then rename over the old file
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def generate_keyring(path: Path | str) -> Path:
    """Create a new key file with one random master and one random lookup key, mode 0600.

    Refuses to overwrite an existing file (that would shred every batch).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_private(path, new_keyring_document(), exclusive=True)
    except FileExistsError:
        raise KeyringError(f"{path}: key file already exists; refusing to overwrite it") from None
    return path


def add_master_key(path: Path | str) -> int:
    """Add a new master key version and make it current (step 1 of a rotation); returns the version."""
    path = Path(path)
    doc = _read_document(path, require_private=True)
    keyring_from_document(doc, str(path))  # validates before anything is written
    doc, version = with_new_master_key(doc)
    _write_private(path, doc, exclusive=False)
    return version


def key_file_provider(path: Path | str) -> ReloadableKeyProvider:
    """The keys of a key file, read again on ``reload`` and rotated in the file by ``add_master_key``."""
    path = Path(path)
    return ReloadableKeyProvider(lambda: load_keyring(path), lambda: add_master_key(path))
