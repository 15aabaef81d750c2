"""One settings object for every process: server, CLI, tests.

Sources, later wins: built-in defaults < ``$RULEBILL_HOME/rulebill.yaml`` (or the
file named by ``RULEBILL_CONFIG``) < environment variables ``RULEBILL_*``.
Secrets are never defaults: key material is read from files or the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> Path:
    return Path(os.environ.get("RULEBILL_HOME") or REPO_ROOT / "var")


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    # SQLAlchemy URL; empty means an embedded SQLite file in ``home``.
    database_url: str = ""
    listen_address: str = "127.0.0.1:50051"
    # The address clients use; defaults to listen_address.
    server_address: str = ""
    plans_dir: Path = REPO_ROOT / "plans"
    rules_dir: Path = REPO_ROOT / "rules"
    # Key material (files are created 0600 by `rulebill bootstrap` when absent).
    keyring_file: str = ""
    # The operator's bootstrap admin credential, written once by `rulebill bootstrap`.
    bootstrap_token_file: str = ""
    # TLS: server cert/key; with client_ca_file set, clients must present a certificate (mTLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    max_message_bytes: int = 16 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    default_token_ttl_seconds: int = 30 * 24 * 3600
    max_workers: int = 16
    # Largest voucher batch a single GenerateBatch may create.
    max_voucher_batch: int = 1_000_000
    log_level: str = "INFO"
    # Seconds between rounds of the billing scheduler (scheduled bill runs, overdue invoices); 0 turns it off.
    billing_scheduler_seconds: int = 0

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'rulebill.db'}"

    @property
    def effective_server_address(self) -> str:
        return self.server_address or self.listen_address

    @property
    def effective_keyring_file(self) -> Path:
        return Path(self.keyring_file) if self.keyring_file else self.home / "keyring.json"

    @property
    def effective_bootstrap_token_file(self) -> Path:
        return Path(self.bootstrap_token_file) if self.bootstrap_token_file else self.home / "bootstrap-admin.token"

    def with_overrides(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        return float(raw)  # only durations (shutdown grace) are fractional settings
    if kind in ("Path", Path):
        return Path(raw)
    return str(raw)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    home = Path(env.get("RULEBILL_HOME") or REPO_ROOT / "var")
    values["home"] = home
    config_file = Path(env["RULEBILL_CONFIG"]) if env.get("RULEBILL_CONFIG") else home / "rulebill.yaml"
    if config_file.is_file():
        data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{config_file}: settings file must be a mapping")
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{config_file}: unknown setting(s): {', '.join(unknown)}")
        values.update({k: _coerce(k, v) for k, v in data.items()})
    for name in names:
        key = f"RULEBILL_{name.upper()}"
        if key in env and name != "home":
            values[name] = _coerce(name, env[key])
    return Settings(**values)
