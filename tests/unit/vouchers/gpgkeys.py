"""Throw-away OpenPGP keys made with the real gpg binary, for distribution tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GPG = shutil.which("gpg") or "/usr/bin/gpg"


def gpg(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([GPG, "--homedir", str(home), "--batch", "--no-tty", "--quiet", *args], input=stdin,
                          capture_output=True, timeout=120, check=False)


@dataclass(frozen=True)
class KeyHome:
    home: Path
    fingerprint: str
    public_key: bytes
    secret_key: bytes


def make_key(home: Path, uid: str) -> KeyHome:
    home.mkdir(mode=0o700, parents=True)
    made = gpg(home, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "future-default", "default", "never")
    assert made.returncode == 0, made.stderr.decode()
    listing = gpg(home, "--with-colons", "--fingerprint", "--list-secret-keys").stdout.decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    public = gpg(home, "--armor", "--export", fingerprint).stdout
    secret = gpg(home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", fingerprint).stdout
    assert public and secret
    return KeyHome(home, fingerprint, public, secret)


def stop_agent(home: Path) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run([gpgconf, "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, timeout=30, check=False)
