"""``rulebill bootstrap``: seed a migrated database with the sample operator, its plan set and an admin credential."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.identity import SYSTEM, Principal, Role
from engine.operator import load_operator
from engine.plans.catalogue import validate_files
from engine.plans.compiler import build_ir, ir_digest
from engine.plans.loader import plan_files
from engine.settings import Settings
from servers.root import Root, build_root, provision_voucher_keys


def bootstrap(settings: Settings, root: Root | None = None, load_plans: bool = True, samples: bool = False) -> dict[str, Any]:
    """Seed a migrated database with the operator and MVNOs of ``plans/operator.yaml``, upload the plan set
    of ``plans/`` as the operator's and activate it now when no version is active yet, and write the
    bootstrap admin credential (0600) once. Safe to run again: existing objects are kept.

    ``load_plans=False`` skips the plan set (test fixtures that upload their own versions); ``samples=True`` (what
    `rulebill bootstrap` does) also provisions the sample billing accounts of plans/billing/samples.yaml."""
    own = root is None
    root = root or build_root(settings)
    try:
        seed, problems = load_operator(settings.plans_dir / "operator.yaml")
        if seed is None:
            raise SystemExit("\n".join(str(p) for p in problems))
        root.tenants.create_mno(seed.operator.tenant_id, seed.operator.display_name, seed.operator.currency)
        operator = replace(SYSTEM, tenant_id=seed.operator.tenant_id, subject="bootstrap")
        created = []
        for mvno in seed.mvnos:
            with root.uow() as uow:
                exists = uow.tenants.get(mvno.tenant_id) is not None
            if not exists:
                root.tenants.create_mvno(operator, mvno.tenant_id, mvno.display_name, mvno.currency)
                created.append(mvno.tenant_id)
        plan_set = _bootstrap_plan_set(root, settings, operator) if load_plans else {}
        voucher_keys = provision_voucher_keys(settings)  # keyring and OpenPGP signing key, 0600, when missing
        token_file = settings.effective_bootstrap_token_file
        wrote_token = False
        if not _token_still_valid(root, token_file):
            _, bearer = root.tokens.issue(None, "bootstrap-admin", seed.operator.tenant_id, Role.OPERATOR_ADMIN, 0)
            token_file.parent.mkdir(parents=True, exist_ok=True)
            write_secret_file(token_file, bearer + "\n")
            wrote_token = True
        extra: dict[str, Any] = {}
        if samples and load_plans:
            from servers.billing_samples import bootstrap_samples

            extra = bootstrap_samples(root)
        return {"operator": seed.operator.tenant_id, "mvnos_created": created, "token_file": str(token_file),
                "token_written": wrote_token, **voucher_keys, **plan_set, **extra}
    finally:
        if own:
            root.close()


def _bootstrap_plan_set(root: Root, settings: Settings, operator: Principal) -> dict[str, Any]:
    """The operator's plan set from plans/ (the PlanService upload path), active now unless a version already is."""
    tenant = operator.tenant_id
    now = root.clock.now()
    with root.plan_uow() as uow:
        active = uow.plan_versions.active(tenant, now)
        latest = uow.plan_versions.get(tenant, uow.plan_versions.latest_number(tenant))
    if active is not None:
        return {"plan_set_version": active.version, "plan_set_activated": False}
    files = plan_files(settings.plans_dir)
    plan_set, problems = validate_files(files, root.plans.limits)
    if plan_set is None:
        raise SystemExit("plans/ is invalid:\n" + "\n".join(str(p) for p in problems))
    if latest is not None and latest.activate_time is None and latest.digest == ir_digest(build_ir(plan_set)):
        version = latest  # uploaded by an earlier, interrupted bootstrap: activate it rather than upload again
    else:
        version = root.plans.upload(operator, tenant, files)
    root.plans.activate(operator, tenant, version.version, None)
    return {"plan_set_version": version.version, "plan_set_activated": True, "plan_set_files": len(files)}


def _token_still_valid(root: Root, token_file: Path) -> bool:
    try:
        bearer = token_file.read_text().strip()
        root.tokens.authenticate(bearer)
        return True
    except Exception:  # noqa: BLE001 - missing, expired, revoked or foreign: issue a new one
        return False


def write_secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
