"""One settings object for every process: server, CLI, tests.

Sources, later wins: built-in defaults < ``$RULEBILL_HOME/rulebill.yaml`` (or the
file named by ``RULEBILL_CONFIG``) < environment variables ``RULEBILL_<NAME>``.
Secrets are never defaults: key material is read from files or the environment.

The settings file is read with the line-aware loader of plan files
(:mod:`engine.yamlio`): duplicate keys, unknown settings and values of the wrong
type are all reported together, each as ``file:line:col``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from engine.eventrules.adapter import BACKENDS as EVENT_RULE_BACKENDS
from engine.yamlio import Mark, MarkedMap, Problem, load_file

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "RULEBILL_"


def _default_home() -> Path:
    return Path(os.environ.get("RULEBILL_HOME") or REPO_ROOT / "var")


def _default_event_rules_backend() -> str:
    # like home: a Settings built in code (the tests' servers) honours the variable that load_settings reads
    return os.environ.get("RULEBILL_EVENT_RULES_BACKEND") or "compiled"


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
    # Voucher keys given directly (e.g. by a secret store through the environment) instead of keyring_file:
    # "<version>:<base64 key>,..."; *_current 0 means the highest version given.
    voucher_master_keys: str = field(default="", repr=False)
    voucher_master_current: int = 0
    voucher_lookup_keys: str = field(default="", repr=False)
    voucher_lookup_current: int = 0
    # The operator's OpenPGP secret key that signs voucher export files.
    voucher_signing_key_file: str = ""
    # The operator's bootstrap admin credential, written once by `rulebill bootstrap`.
    bootstrap_token_file: str = ""
    # TLS: server cert/key; with client_ca_file set, clients must present a certificate (mTLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # TLS of the client (the `rulebill` client commands, clients.client.connect): the CA that signed the server's
    # certificate (unset: plaintext), and for a server with tls_client_ca_file this client's certificate and key (mTLS).
    # A file named here that cannot be read stops the command with one line naming the setting.
    tls_ca_file: str = ""
    tls_client_cert_file: str = ""
    tls_client_key_file: str = ""
    max_message_bytes: int = 16 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    default_token_ttl_seconds: int = 30 * 24 * 3600
    # How long a checked token's principal is reused without reading the store again (0: every call reads it).  A
    # revocation or tenant suspension through this server applies at once; through another replica, within this.
    auth_cache_seconds: float = 5.0
    # Dual control: how long a token a security officer issued waits for a second officer's approval before the request
    # expires (the token then never works; its issuer issues a new one).
    token_approval_seconds: int = 24 * 3600
    max_workers: int = 16
    # Largest voucher batch a single GenerateBatch may create.
    max_voucher_batch: int = 1_000_000
    # Bounds of one CDR for rating (engine.rating.limits): longer, larger or more is refused, not priced.
    cdr_max_call_seconds: int = 48 * 3600
    cdr_max_volume_bytes: int = 10**12
    cdr_max_events: int = 100_000
    # Bounds of one uploaded or validated plan set (UploadPlanSet, ValidatePlanSet, bootstrap): its size, its
    # files, the keys and values of its YAML together, the problems one reply lists, and the time spent on it.
    max_plan_set_bytes: int = 8 * 1024 * 1024
    max_plan_set_files: int = 5000
    max_plan_set_values: int = 200_000
    max_problems_per_file: int = 100
    max_problems: int = 1000
    max_validation_seconds: float = 30.0
    # Largest CDR file one MediateFile call uploads (the data messages together); it is spooled to a temporary file
    # before it is mediated, so this bounds the disk one call can take.
    max_mediation_upload_bytes: int = 2 * 1024**3
    # Largest TAP 3.12 file one call mediates: a TAP file is decoded whole in memory (about 15 times its size at the
    # peak), unlike a CSV file, which is read in blocks; a larger one is refused before it is read.
    max_tap3_bytes: int = 32 * 1024**2
    # How often the server checks that its database answers (health turns NOT_SERVING when it does not).
    health_check_seconds: float = 5.0
    # Two-step recharge: a reservation neither committed nor released this long is moved on by RecoverReservations.
    voucher_reservation_timeout_seconds: int = 900
    # Highest face value a CSR may give a voucher, per currency ("EUR:20.00,JPY:3000"); empty: CSRs amend expiry only.
    voucher_csr_face_value_limits: str = ""
    log_level: str = "INFO"
    # The rule engine behind barring, credit alerts and the voucher lifecycles: "compiled" (the conditions as Python
    # closures, the default: far faster, engine.eventrules.adapter) or "durable_rules"; both give the same decisions.
    event_rules_backend: str = field(default_factory=_default_event_rules_backend)
    # Seconds between rounds of the billing scheduler (scheduled bill runs, overdue invoices); 0 turns it off.
    billing_scheduler_seconds: int = 0
    # Batches of one bill run worked on in parallel, each on its own database connection (1: one after the other).
    billing_workers: int = 2
    # A large bill run's staged usage (PostgreSQL, store/usage_stage.py) of a run still marked running is dropped once it
    # is this old (a run killed and never resumed; a resumed run stages again); a finished run's at once.  Checked as
    # the server starts, on each billing scheduler round and by `rulebill db drop-stale-stages`.
    billing_stage_max_age_hours: int = 24
    # Where bill e-mails go (servers/billing_mail.py): smtp://[user:password@]host[:port], smtp+starttls://,
    # smtps://, or file:///folder; empty: issued bills of e-mail accounts wait in the outbox.
    billing_mail_url: str = ""
    # RateCdrs: the most CDRs of one stream rated and stored as one transaction.  Messages of the stream that are
    # already received when one is rated, with the same options, are rated together up to this many CDRs (a message is
    # never split) and max_message_bytes of messages; each reply still goes out only once its CDRs are committed.
    # 1 rates each message on its own, with the same results (a CDR sent again gives back where its message starts).
    rating_group_max_cdrs: int = 20_000

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

    @property
    def effective_voucher_signing_key_file(self) -> Path:
        return Path(self.voucher_signing_key_file) if self.voucher_signing_key_file else self.home / "voucher-signing-key.asc"

    def voucher_key_variables(self) -> dict[str, str] | None:
        """The voucher keys given as settings, named as the keyring's environment format names them;
        None when the keys come from ``keyring_file``."""
        if not self.voucher_master_keys:
            return None
        return {
            "RULEBILL_VOUCHER_MASTER_KEYS": self.voucher_master_keys,
            "RULEBILL_VOUCHER_MASTER_CURRENT": str(self.voucher_master_current or ""),
            "RULEBILL_VOUCHER_LOOKUP_KEYS": self.voucher_lookup_keys,
            "RULEBILL_VOUCHER_LOOKUP_CURRENT": str(self.voucher_lookup_current or ""),
        }

    def with_overrides(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


class SettingsInvalid(ValueError):
    """The settings file or a ``RULEBILL_*`` variable is unusable; ``problems`` holds every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        # a variable has no line: "RULEBILL_X: code: message" rather than "RULEBILL_X:0:0: ..."
        lines = [str(p) if p.line else f"{p.file}: {p.code}: {p.message}" for p in self.problems]
        super().__init__("invalid settings:\n" + "\n".join(lines))


_TYPES: dict[Any, type] = {"int": int, "float": float, "Path": Path, "str": str}
_WANT = {int: "a whole number", float: "a number", Path: "a path", str: "text"}


def _kinds() -> dict[str, type]:
    # the dataclass annotations are strings (postponed evaluation): map them back to the types they name
    # (every field is one of these four)
    return {f.name: _TYPES[f.type] for f in fields(Settings)}


def _coerce(kind: type, raw: Any) -> Any:
    """``raw`` (a YAML scalar or an environment string) as ``kind``; ValueError says what was expected."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, (dict, list)):
        raise ValueError(f"expected {_WANT[kind]}, got {type(raw).__name__ if raw is not None else 'nothing'}")
    if kind is int:
        if isinstance(raw, float) or not str(raw).strip().lstrip("-").isdigit():
            raise ValueError(f"expected {_WANT[kind]}, got {raw!r}")
        return int(raw)
    if kind is float:  # only durations (shutdown grace, time limits) are fractional settings
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected {_WANT[kind]}, got {raw!r}") from None
    return Path(str(raw)) if kind is Path else str(raw)


# settings that take one of a few words
_CHOICES: dict[str, tuple[str, ...]] = {"event_rules_backend": tuple(EVENT_RULE_BACKENDS)}


# settings that take a whole number within bounds (both included)
_RANGES: dict[str, tuple[int, int]] = {"rating_group_max_cdrs": (1, 200_000)}


def _value(name: str, kind: type, raw: Any) -> Any:
    value = _coerce(kind, raw)
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"expected one of {', '.join(_CHOICES[name])}, got {value!r}")
    if name in _RANGES:
        check_range(name, value)
    return value


def check_range(name: str, value: int) -> None:
    """ValueError unless ``value`` is within the bounds of setting ``name`` (``_RANGES``)."""
    low, high = _RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"expected a whole number from {low:,} to {high:,}, got {value!r}")


def _from_file(path: Path, kinds: Mapping[str, type], problems: list[Problem]) -> dict[str, Any]:
    doc = load_file(path, problems)
    if doc is None:
        return {}
    if not isinstance(doc, MarkedMap):
        problems.append(Problem.at(getattr(doc, "mark", Mark(str(path), 1, 1)), "settings.type", "the settings file must be a mapping"))
        return {}
    values: dict[str, Any] = {}
    for name, raw in doc.items():
        if name not in kinds:
            problems.append(Problem.at(doc.key_mark(name), "settings.unknown",
                                      f"unknown setting {name!r}; known: {', '.join(sorted(kinds))}"))
            continue
        try:
            values[name] = _value(name, kinds[name], raw)
        except ValueError as exc:
            problems.append(Problem.at(doc.mark_of(name), "settings.type", f"{name}: {exc}"))
    return values


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of this process; raises :class:`SettingsInvalid` listing every problem found."""
    env = os.environ if env is None else env
    kinds = _kinds()
    home = Path(env.get("RULEBILL_HOME") or REPO_ROOT / "var")
    values: dict[str, Any] = {"home": home}
    config_file = Path(env["RULEBILL_CONFIG"]) if env.get("RULEBILL_CONFIG") else home / "rulebill.yaml"
    problems: list[Problem] = []
    if config_file.is_file():
        values.update(_from_file(config_file, kinds, problems))
    for name, kind in kinds.items():
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env and name != "home":
            try:
                values[name] = _value(name, kind, env[key])
            except ValueError as exc:
                problems.append(Problem(key, 0, 0, "settings.type", str(exc)))
    if problems:
        raise SettingsInvalid(problems)
    return Settings(**values)
