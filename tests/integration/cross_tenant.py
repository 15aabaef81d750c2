"""Descriptor-driven cross-tenant probes, reusable by every service.

An RPC "takes an object id" when its request message (or a singular message inside it) has a field named in
:data:`OBJECT_ID_FIELDS`.  For each such RPC of a service the probe builds a request that names the *owner's*
objects -- every id field filled from ``owned`` by field name -- calls it with *another* tenant's token, and
records the status.  The test then requires a refusal (``NOT_FOUND`` or ``PERMISSION_DENIED``) for every one,
and that the owner's objects and the audit log did not change.  An RPC added later is probed automatically;
if its request names an id this module has no value for, :func:`probe_service` fails and says which.

Using it for another service::

    owned = {"subscriber_id": ..., "msisdn": ...}           # the owner's objects, by id field name
    extra = {"ChangeSubscriberPlan": {"tariff_plan": "TP_X"}}  # what a request needs besides ids to pass validation
    probes = probe_service(stack.address, "billing.v1.SubscriberService", owned, attacker_bearer, extra)
    assert_all_refused(probes)

Give the attacker every permission and privilege its tenant may hold, so that only tenancy can refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tests.integration.rpc_catalogue import Rpc, all_rpcs, call

# request fields that name an object some tenant owns (not idempotency keys, not filters like page tokens)
OBJECT_ID_FIELDS = frozenset({
    "batch_id", "serial", "first_serial", "last_serial", "msisdn", "subscriber_id", "tenant_id", "reservation_id",
    "profile_id", "token_id", "account_id", "invoice_id", "file_id", "version",
})
REFUSED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


def id_paths(message: Descriptor, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of the object id fields of a request (into singular message fields, a few levels deep)."""
    out: list[str] = []
    for f in message.fields:
        path = f"{prefix}{f.name}"
        if f.type == FieldDescriptor.TYPE_MESSAGE and not _repeated(f) and depth < 3:
            if f.message_type.full_name.startswith("google.protobuf."):
                continue
            out += id_paths(f.message_type, f"{path}.", depth + 1)
        elif f.name in OBJECT_ID_FIELDS and not _repeated(f):
            out.append(path)
    return out


def _repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _set(message: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        message = getattr(message, name)
    setattr(message, leaf, value)


def build_request(rpc: Rpc, owned: Mapping[str, Any], extra: Mapping[str, Any]) -> Any:
    """The request of ``rpc`` naming the owner's objects; ``extra`` (field path -> value) fills the rest."""
    request = rpc.request_class()
    for path in id_paths(rpc.request_class.DESCRIPTOR):
        leaf = path.rsplit(".", 1)[-1]
        value = owned.get(path, owned.get(leaf))
        if value is None:
            raise KeyError(f"{rpc.service}.{rpc.name}: no owned object for id field {path!r}; add it to `owned`")
        _set(request, path, value)
    for path, value in extra.items():
        _set(request, path, value)
    return request


@dataclass
class Probe:
    rpc: str
    ids: list[str]
    code: grpc.StatusCode | None  # None: the call succeeded
    details: str = ""
    request: Any = field(default=None, repr=False)


def probe_service(address: str, service: str, owned: Mapping[str, Any], bearer: str,
                  extra: Mapping[str, Mapping[str, Any]] | None = None) -> list[Probe]:
    """Call every RPC of ``service`` that takes an object id, as ``bearer``, on the owner's objects."""
    probes = []
    with grpc.insecure_channel(address) as channel:
        for rpc in all_rpcs([service]):
            ids = id_paths(rpc.request_class.DESCRIPTOR)
            if not ids:
                continue
            request = build_request(rpc, owned, (extra or {}).get(rpc.name, {}))
            try:
                call(channel, rpc, request, metadata=[("authorization", f"Bearer {bearer}")])
                probes.append(Probe(rpc.name, ids, None, request=request))
            except grpc.RpcError as err:
                probes.append(Probe(rpc.name, ids, err.code(), err.details() or "", request))
    return probes


def assert_all_refused(probes: list[Probe]) -> None:
    wrong = [f"{p.rpc} {p.ids}: {p.code.name if p.code else 'OK'} {p.details}" for p in probes if p.code not in REFUSED]
    assert not wrong, "calls on another tenant's objects were not refused:\n" + "\n".join(wrong)
