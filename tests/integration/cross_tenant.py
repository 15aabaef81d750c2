"""Descriptor-driven cross-tenant probes, reusable by every service.

An RPC "takes an object id" when its request message (or a message inside it; a repeated one through its first
entry, such as the CDRs of a rating request) has a field named in :data:`OBJECT_ID_FIELDS` (a list of ids is
filled with one).  For each such RPC of a service the probe builds a request that names the *owner's*
objects -- every id field filled from ``owned`` by field name -- calls it with *another* tenant's token, and
records the status.  The test then requires a refusal (``NOT_FOUND`` or ``PERMISSION_DENIED``) for every one (or,
with the request's own ``tenant_id`` left empty, the very reply objects that exist nowhere get),
and that the owner's objects and the audit log did not change.  An RPC added later is probed automatically;
if its request names an id this module has no value for, :func:`probe_service` fails and says which.

Using it for another service::

    owned = {"subscriber_id": ..., "msisdn": ...}           # the owner's objects, by id field name
    extra = {"ChangeSubscriberPlan": {"tariff_plan": "TP_X"}}  # what a request needs besides ids to pass validation
    probes = probe_service(stack.address, "billing.v1.SubscriberService", owned, attacker_bearer, extra)
    assert_all_refused(probes)

Give the attacker every permission and privilege its tenant may hold, so that only tenancy can refuse.
:func:`probe_mixed` is the mixed mode: each RPC whose request can name several objects (a list of ids, a repeated
message, a serial range) is called with the caller's own objects and a victim's beside them; the test then requires
that nothing of the victim's is in any reply nor changed, whether the call is refused or answers for the caller's.
:func:`probe_services` probes several services (every registered one: ``every_registered_rpc``), and
:func:`database_rows` snapshots the whole database for the "changes nothing" half of the check.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from sqlalchemy import MetaData, select
from sqlalchemy.exc import SAWarning

from tests.integration.rpc_catalogue import Rpc, all_rpcs, call

# request fields that name an object some tenant owns (not idempotency keys, not filters like page tokens)
OBJECT_ID_FIELDS = frozenset({
    "batch_id", "serial", "first_serial", "last_serial", "msisdn", "subscriber_id", "tenant_id", "reservation_id",
    "profile_id", "token_id", "account_id", "invoice_id", "file_id", "version",
    # plan set versions compared or tried, and the subscriber a CDR is charged to
    "from_version", "to_version", "candidate_version", "a_number", "run_id", "purchase_id", "resume_run_id",
    # lists of ids (filled with one owned id)
    "account_ids", "invoice_ids",
})
REFUSED = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)


def id_paths(message: Descriptor, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of the object id fields of a request, a few levels into its messages (``cdrs[0].a_number``:
    a repeated message through its first entry)."""
    out: list[str] = []
    for f in message.fields:
        path = f"{prefix}{f.name}"
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < 3 and not f.message_type.full_name.startswith("google.protobuf.") and not f.message_type.GetOptions().map_entry:
                out += id_paths(f.message_type, f"{path}{'[0]' if _repeated(f) else ''}.", depth + 1)
        elif f.name in OBJECT_ID_FIELDS:
            out.append(path)
    return out


def _repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _set(message: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        if name.endswith("[0]"):
            items = getattr(message, name[:-3])
            message = items[0] if len(items) else items.add()
        else:
            message = getattr(message, name)
    if message.DESCRIPTOR.fields_by_name[leaf].is_repeated:
        getattr(message, leaf).extend(value if isinstance(value, (list, tuple)) else [value])
    else:
        setattr(message, leaf, value)


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def build_request(rpc: Rpc, owned: Mapping[str, Any], extra: Mapping[str, Any], tenant_cleared: bool = False) -> Any:
    """The request of ``rpc`` naming the owner's objects; ``extra`` (field path -> value) fills the rest.
    ``tenant_cleared``: every ``tenant_id`` left empty (the caller's own tenant), so that only the object's own
    tenant check can refuse the call, not the request's ``tenant_id``."""
    request = rpc.request_class()
    for path in id_paths(rpc.request_class.DESCRIPTOR):
        leaf = _leaf(path)
        if tenant_cleared and leaf == "tenant_id":
            continue
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
    # tenant_cleared probes that succeeded: whether the reply is the one the same request naming objects that
    # exist nowhere gets (an empty list, a CDR rated as an unknown number's): nothing of the owner's disclosed
    as_if_unknown: bool = False


def probe_service(address: str, service: str, owned: Mapping[str, Any], bearer: str,
                  extra: Mapping[str, Mapping[str, Any]] | None = None) -> list[Probe]:
    """Call every RPC of ``service`` that takes an object id, as ``bearer``, on the owner's objects."""
    return probe_rpcs(address, all_rpcs([service]), owned, bearer, extra)


def probe_rpcs(address: str, rpcs: list[Rpc], owned: Mapping[str, Any], bearer: str,
               extra: Mapping[str, Mapping[str, Any]] | None = None, tenant_cleared: bool = False,
               unknown: Mapping[str, Any] | None = None) -> list[Probe]:
    """Call each of ``rpcs`` that takes an object id, as ``bearer``, on the owner's objects.  ``tenant_cleared``:
    only the RPCs naming an object besides a tenant, each with its ``tenant_id`` fields left empty; a call that
    succeeds is called again with ``unknown``'s ids (objects that exist nowhere) and the two replies compared."""
    probes = []
    with grpc.insecure_channel(address) as channel:
        for rpc in rpcs:
            ids = id_paths(rpc.request_class.DESCRIPTOR)
            if tenant_cleared:
                ids = [p for p in ids if _leaf(p) != "tenant_id"]
            if not ids:
                continue
            request = build_request(rpc, owned, (extra or {}).get(rpc.name, {}), tenant_cleared)
            md = [("authorization", f"Bearer {bearer}")]
            try:
                reply = call(channel, rpc, request, metadata=md)
                same = unknown is not None and reply == call(channel, rpc, build_request(rpc, unknown, (extra or {}).get(rpc.name, {}),
                                                                                         tenant_cleared), metadata=md)
                probes.append(Probe(rpc.name, ids, None, request=request, as_if_unknown=same))
            except grpc.RpcError as err:
                probes.append(Probe(rpc.name, ids, err.code(), err.details() or "", request))
    return probes


def database_rows(engine: Any) -> dict[str, list[str]]:
    """Every row of every table (the audit log included), to compare before and after refused calls."""
    meta = MetaData()
    with warnings.catch_warnings():
        # SQLAlchemy cannot reflect the SQLite ledger's index on an expression (migration plans_0005); rows are what count here
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        meta.reflect(engine)
    with engine.connect() as conn:
        return {name: sorted(repr(tuple(row)) for row in conn.execute(select(table))) for name, table in sorted(meta.tables.items())}


def assert_all_refused(probes: list[Probe]) -> None:
    wrong = [f"{p.rpc} {p.ids}: {p.code.name if p.code else 'OK'} {p.details}" for p in probes
             if p.code not in REFUSED and not p.as_if_unknown]
    assert not wrong, "calls on another tenant's objects were not refused:\n" + "\n".join(wrong)


# -- mixed probes: the caller's own object and a victim's in one request ------------------------------------------

SERIAL_RANGE = ("first_serial", "last_serial")


def mixed_paths(message: Descriptor) -> list[str]:
    """The id paths of a request that can name several objects at once: a repeated id field (``account_ids``), an id
    inside a repeated message (``cdrs[0].a_number``) or a serial range (``selection.first_serial``)."""
    out = []
    for path in id_paths(message):
        *parents, leaf = path.split(".")
        f = _field(message, path)
        if leaf == "tenant_id":
            continue
        if f.is_repeated or any(p.endswith("[0]") for p in parents) or leaf in SERIAL_RANGE:
            out.append(path)
    return out


def _field(message: Descriptor, path: str) -> FieldDescriptor:
    for name in path.split(".")[:-1]:
        message = message.fields_by_name[name.removesuffix("[0]")].message_type
    return message.fields_by_name[_leaf(path)]


def build_mixed_request(rpc: Rpc, own: Mapping[str, Any], victim: Mapping[str, Any], extra: Mapping[str, Any]) -> Any:
    """The request of ``rpc`` naming the caller's ``own`` objects and, in each of its lists, a ``victim``'s beside them:
    a list of ids gets [own, victim]; a repeated message a second entry, a copy of the first naming the victim's; a
    serial range spans both tenants' serials.  ``extra`` (field path -> value) fills the rest, in every entry."""
    request = build_request(rpc, own, extra)
    for path in mixed_paths(rpc.request_class.DESCRIPTOR):
        leaf = _leaf(path)
        own_value, victim_value = own.get(path, own.get(leaf)), victim.get(path, victim.get(leaf))
        if victim_value is None:
            raise KeyError(f"{rpc.service}.{rpc.name}: no victim's object for id field {path!r}; add it to `victim`")
        if leaf in SERIAL_RANGE:
            both = (own_value, victim_value, own.get("first_serial"), own.get("last_serial"), victim.get("first_serial"),
                    victim.get("last_serial"))
            _replace(request, path, (min if leaf == "first_serial" else max)(v for v in both if v is not None))
        elif "[0]" in path:
            head, _, rest = path.partition("[0].")
            items = getattr(_walk(request, head), _leaf(head))
            if len(items) < 2:
                items.add().CopyFrom(items[0])
            _replace(items[1], rest, victim_value)
        else:
            values = list(own_value) if isinstance(own_value, (list, tuple)) else [own_value]
            values += list(victim_value) if isinstance(victim_value, (list, tuple)) else [victim_value]
            _replace(request, path, values)
    return request


def _walk(message: Any, path: str) -> Any:
    """The message holding the last field of ``path`` (entries ``[0]`` through their first)."""
    for name in path.split(".")[:-1]:
        message = getattr(message, name.removesuffix("[0]"))
        if name.endswith("[0]"):
            message = message[0]
    return message


def _replace(message: Any, path: str, value: Any) -> None:
    holder, leaf = _walk(message, path), _leaf(path)
    if holder.DESCRIPTOR.fields_by_name[leaf].is_repeated:
        del getattr(holder, leaf)[:]
        getattr(holder, leaf).extend(value)
    else:
        setattr(holder, leaf, value)


@dataclass
class MixedProbe:
    rpc: str
    paths: list[str]
    code: grpc.StatusCode | None    # None: the call succeeded
    details: str
    reply: str                       # the reply as text ("" when refused), every message of a stream


def probe_mixed(address: str, rpcs: list[Rpc], own: Mapping[str, Any], victim: Mapping[str, Any], bearer: str,
                extra: Mapping[str, Mapping[str, Any]] | None = None) -> list[MixedProbe]:
    """Call each of ``rpcs`` whose request can name several objects, as ``bearer``, on its own objects with a victim's
    beside them (:func:`build_mixed_request`)."""
    probes = []
    with grpc.insecure_channel(address) as channel:
        for rpc in rpcs:
            paths = mixed_paths(rpc.request_class.DESCRIPTOR)
            if not paths:
                continue
            request = build_mixed_request(rpc, own, victim, (extra or {}).get(rpc.name, {}))
            try:
                reply = call(channel, rpc, request, metadata=[("authorization", f"Bearer {bearer}")])
                probes.append(MixedProbe(rpc.name, paths, None, "", str(reply)))
            except grpc.RpcError as err:
                probes.append(MixedProbe(rpc.name, paths, err.code(), err.details() or "", ""))
    return probes
