"""The shape of the code (STYLE.md points 1-3), checked on the source with ``ast``:

* no import cycle among the modules of ``engine/`` and ``servers/``;
* every RPC method of a servicer is a thin translation (a line budget), and a servicer module opens, spools or
  removes no file (an adapter built in servers/root.py does: servers/adapters/export_spool.py), but for the exceptions
  listed in ``SERVICER_FILE_IO``;
* the client package imports neither ``servers`` nor ``store``, and the command line reaches the server only
  through the typed service clients, which cover every RPC of every service the server registers;
* the engine writes no file and reads no environment variable, starts and manages no OS process (``multiprocessing``,
  process pools, ``subprocess``, ``os.getpid``/``fork``/``kill``...) and reads no clock but through its ``Clock`` port
  (no ``time.time``/``monotonic``, ``datetime.now``, no sleep), but for the exceptions listed in ``ENGINE_SIDE_EFFECTS``.
  Threads are allowed: they start no process and do no I/O of their own; the engine uses them to overlap its work with
  the I/O its ports do (a bill run's batches, rating's writer, read-ahead), each started and ended by its desk.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Import cycles still open: none (issue #12 broke the last two).  A cycle not listed here fails the test, and so
# does a listed one that is gone; keep it empty.
KNOWN_CYCLES: set[frozenset[str]] = set()
MAX_RPC_LINES = 20


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports, wherever the import stands (functions and TYPE_CHECKING
    blocks included: a cycle that only type checking sees is still a cycle of meaning)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import sub` imports the module pkg.sub; `from mod import name` imports mod
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return (out & known) - {name}


def import_cycles(*packages: str, root: Path = REPO) -> set[frozenset[str]]:
    """The strongly connected groups of modules (Tarjan), each a cycle of imports."""
    modules = _modules(root, packages)
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.add(frozenset(group))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_in_engine_or_servers() -> None:
    cycles = import_cycles("engine", "servers")
    assert sorted(map(sorted, cycles - KNOWN_CYCLES)) == [], "new import cycle(s)"
    assert sorted(map(sorted, KNOWN_CYCLES - cycles)) == [], "a known cycle is gone: remove it from KNOWN_CYCLES"


def test_the_cycle_finder_sees_cycles_through_functions_and_type_checking(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.a import g\n")   # a package re-exporting is no cycle
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import X\n")
    (tmp_path / "pkg" / "c.py").write_text("def f():\n    from .a import g\n")
    (tmp_path / "pkg" / "d.py").write_text("import pkg.c\n")
    assert import_cycles("pkg", root=tmp_path) == {frozenset({"pkg.a", "pkg.b", "pkg.c"})}


def _servicer_classes() -> list[tuple[str, ast.ClassDef]]:
    out = []
    for path in sorted((REPO / "servers").glob("*_service.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out += [(path.name, node) for node in tree.body
                if isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Servicer") for b in node.bases)]
    return out


def _rpc_methods() -> list[tuple[str, int]]:
    """(``module:Class.Method``, lines) of every RPC method (CamelCase) of every servicer, decorators and
    signature included."""
    return [(f"{module}:{cls.name}.{fn.name}", (fn.end_lineno or fn.lineno) - fn.lineno + 1)
            for module, cls in _servicer_classes() for fn in cls.body
            if isinstance(fn, ast.FunctionDef) and fn.name[:1].isupper()]


def test_every_rpc_method_is_a_thin_translation() -> None:
    methods = _rpc_methods()
    assert len(methods) >= 40  # the finder sees the servicers
    too_long = [f"{name}: {lines} lines" for name, lines in methods if lines > MAX_RPC_LINES]
    assert too_long == [], f"an RPC method translates, calls one desk method and translates back (at most {MAX_RPC_LINES} lines)"


def _desk_calls(fn: ast.FunctionDef) -> list[str]:
    """The calls of a method on what the servicer holds (``self.desk.get(...)``, ``self.parts.recharger.redeem(...)``):
    a call whose callee is an attribute chain that starts at ``self`` and passes through a held object."""
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            chain, value = [node.func.attr], node.func.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "self" and len(chain) >= 2:
                out.append(".".join(reversed(chain)))
    return out


def test_every_rpc_method_calls_one_desk_method() -> None:
    """A reply that needs more than one thing gets it from one desk method (GetVoucher, AmendVoucher and MediateFile
    used to ask twice)."""
    calls = {f"{module}:{cls.name}.{fn.name}": _desk_calls(fn) for module, cls in _servicer_classes() for fn in cls.body
             if isinstance(fn, ast.FunctionDef) and fn.name[:1].isupper()}
    assert sum(1 for found in calls.values() if len(found) == 1) >= 40   # the finder sees the desk calls
    one_per_branch = {"plan_service.py:PlanServicer.WhatIf"}   # the stored CDRs of a period, or the CDRs sent
    assert {name: found for name, found in calls.items() if len(found) > 1 and name not in one_per_branch} == {}


# File I/O still in a servicer module, each where it is and why; any other fails the test, and so does a listed one
# that is gone.  ExportVouchers' spool moved to servers/adapters/export_spool.py (fixb branch).
SERVICER_FILE_IO = {
    # MediateFile's upload received into a spool (in memory up to SPOOL_IN_MEMORY) before the desk reads it
    ("mediation_service.py", "<module>"),   # import tempfile
    ("mediation_service.py", "_spooled"),
}
_FILE_MODULES = {"tempfile", "shutil"}
_FILE_CALLS = {"open", "mkdtemp", "mkstemp", "TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "TemporaryDirectory",
               "read_bytes", "read_text", "write_bytes", "write_text", "rmtree", "unlink", "rmdir", "mkdir", "makedirs", "touch",
               "iterdir", "glob", "rglob", "listdir", "scandir", "copyfile", "fdopen"}


def _file_io(tree: ast.AST, where: str = "<module>") -> set[str]:
    """The functions (``Class.method``, ``<module>``) of a module that open, spool, list or remove files."""
    found: set[str] = set()
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found |= _file_io(child, child.name if where == "<module>" else f"{where}.{child.name}")
            continue
        if isinstance(child, ast.Import) and any(a.name.split(".")[0] in _FILE_MODULES for a in child.names):
            found.add(where)
        elif isinstance(child, ast.ImportFrom) and (child.module or "").split(".")[0] in _FILE_MODULES:
            found.add(where)
        elif isinstance(child, ast.Call):
            func = child.func
            if (isinstance(func, ast.Name) and func.id in _FILE_CALLS) or (isinstance(func, ast.Attribute) and func.attr in _FILE_CALLS):
                found.add(where)
        found |= _file_io(child, where)
    return found


def servicer_file_io(root: Path = REPO) -> set[tuple[str, str]]:
    return {(path.name, where) for path in sorted((root / "servers").glob("*_service.py"))
            for where in _file_io(ast.parse(path.read_text(encoding="utf-8")))}


def test_no_servicer_module_does_file_io() -> None:
    found = servicer_file_io()
    assert found - SERVICER_FILE_IO == set(), "file I/O in a servicer: move it into an adapter built in servers/root.py"
    assert SERVICER_FILE_IO - found == set(), "an allowed exception is gone: remove it from SERVICER_FILE_IO"


def test_the_servicer_file_io_scan_sees_the_export_spool_that_was_in_the_servicer(tmp_path: Path) -> None:
    # ExportVouchers as it was before its spool moved to servers/adapters/export_spool.py
    (tmp_path / "servers").mkdir()
    (tmp_path / "servers" / "voucher_service.py").write_text(
        "import shutil\nimport tempfile\nfrom pathlib import Path\n\n"
        "def _file_blocks(path):\n    with open(path, 'rb') as fh:\n        yield fh.read(10)\n\n"
        "class VoucherServicer(rpc.VoucherServiceServicer):\n    def ExportVouchers(self, request, context):\n"
        "        folder = Path(tempfile.mkdtemp(prefix='rb-export-'))\n        try:\n"
        "            with open(folder / 'vouchers.gpg', 'wb') as out:\n                pass\n"
        "        finally:\n            shutil.rmtree(folder, ignore_errors=True)\n"
        "    def GetVoucher(self, request, context):\n        return self.desk.get_voucher(request.serial)\n")
    assert servicer_file_io(tmp_path) == {("voucher_service.py", "<module>"), ("voucher_service.py", "_file_blocks"),
                                          ("voucher_service.py", "VoucherServicer.ExportVouchers")}


def test_every_rpc_method_is_typed_against_the_generated_messages() -> None:
    untyped = [f"{module}:{cls.name}.{fn.name}" for module, cls in _servicer_classes() for fn in cls.body
               if isinstance(fn, ast.FunctionDef) and fn.name[:1].isupper()
               and (fn.returns is None or any(a.annotation is None for a in fn.args.args[1:]))]
    assert untyped == []


def _imported_roots(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
    return names


def test_the_client_package_imports_neither_servers_nor_store() -> None:
    offenders = [f"{p.relative_to(REPO)}: {sorted(_imported_roots(p) & {'servers', 'store'})}"
                 for p in sorted((REPO / "clients").rglob("*.py")) if _imported_roots(p) & {"servers", "store"}]
    assert offenders == []


def test_the_command_line_speaks_through_the_typed_clients_only() -> None:
    """No raw stub, no generated ``*_pb2_grpc`` module, no CamelCase RPC call in the command line."""
    offenders = []
    for path in [REPO / "clients" / "cli.py", *sorted((REPO / "clients" / "commands").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("billing") and any(
                    a.name.endswith("_pb2_grpc") for a in node.names):
                offenders.append(f"{where}: imports a generated stub module")
            if isinstance(node, ast.Attribute) and node.attr in ("stub", "rpc"):
                offenders.append(f"{where}: .{node.attr}")
    assert offenders == []


def _client_classes() -> dict[str, type]:
    """Service full name -> the class of RulebillClient's typed client for it (found by the stub it holds)."""
    from clients.client import RulebillClient

    with RulebillClient("127.0.0.1:9", "unused") as rb:   # a channel connects on the first call only
        services = [value for value in vars(rb).values() if hasattr(value, "rpc")]
    return {f"billing.v1.{type(s.rpc).__name__.removesuffix('Stub')}": type(s) for s in services}


def test_every_registered_service_has_a_typed_client_calling_each_rpc() -> None:
    """A new RPC needs its client method (and a new service its client class on RulebillClient)."""
    from google.protobuf import descriptor_pool

    from tests.integration.rpc_catalogue import RootStub, registered_service_names

    clients = _client_classes()
    missing = []
    for full in registered_service_names(RootStub()):
        if full not in clients:
            missing.append(f"{full}: no client class on RulebillClient")
            continue
        called = {node.attr for node in ast.walk(ast.parse(inspect.getsource(clients[full])))
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "rpc"}
        missing += [f"{full}.{m.name}" for m in descriptor_pool.Default().FindServiceByName(full).methods if m.name not in called]
    assert missing == []


def _commands(parser: object) -> set[str]:
    return set(parser._subparsers._group_actions[0].choices)  # type: ignore[attr-defined]


def test_the_rulebill_command_adds_the_admin_commands_to_the_client_ones() -> None:
    import tomllib

    from clients.cli import build_parser
    from servers import admin

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["rulebill"] == "servers.admin:main"
    client_only = _commands(build_parser())
    assert {"tenants", "subscribers", "tokens", "audit", "vouchers", "rating", "plans", "mediate", "health"} <= client_only
    assert _commands(build_parser([admin.register])) - client_only == {"serve", "db", "bootstrap", "security-officer"}


# The engine's file writes, environment reads and clock readings still allowed, each in the one function that needs it
# and with its reason; the same effect anywhere else in the file fails the test.  Key files, the offline mediation
# outputs and their duplicate index are adapters' (servers/adapters/keyring_file.py, clients/mediation_*.py), and so
# are a bill run's worker processes (servers/adapters/bill_run_processes.py).
ENGINE_SIDE_EFFECTS = {
    # the one settings object reads RULEBILL_* (STYLE point 15)
    ("engine/settings.py", "_default_home", "environment"),
    ("engine/settings.py", "_default_event_rules_backend", "environment"),
    ("engine/settings.py", "load_settings", "environment"),
    ("engine/replay.py", "update_folder", "write"),              # `rulebill replay --update` rewrites a rating case's expected.jsonl
    ("engine/billing/replay.py", "update_bill_case", "write"),   # and a bill case's expected.yaml
    ("engine/clock.py", "SystemClock.now", "clock"),             # the Clock port's own reading of the time
    # a call's deadline is a reading of the monotonic clock by default (tests give their own ``now``); the interceptor
    # opens the scope, the engine's loops only check it
    ("engine/cancellation.py", "CallScope.__init__", "clock"),
    ("engine/cancellation.py", "time_limit", "clock"),
}
_WRITING_CALLS = {"write_text", "write_bytes", "mkdir", "unlink", "rmdir", "rmtree", "touch", "fdopen", "makedirs"}
_WRITING_OS_CALLS = {"open", "replace", "rename", "remove"}   # as os.<name>/shutil.<name> (str.replace is no write)
# modules that start or manage OS processes, and names that do wherever they are imported from
_PROCESS_MODULES = {"multiprocessing", "subprocess", "signal", "concurrent.futures.process"}
_PROCESS_NAMES = {"ProcessPoolExecutor", "BrokenProcessPool"}
_PROCESS_OS = {"getpid", "getppid", "fork", "forkpty", "register_at_fork", "kill", "killpg", "_exit", "abort", "system",
               "popen", "posix_spawn", "posix_spawnp", "wait", "waitpid", "wait3", "wait4", "waitid", "setsid", "nice"}
_CLOCK_TIME = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time",
               "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime", "clock_gettime_ns", "sleep"}
_CLOCK_DATETIME = {"now", "utcnow", "today"}   # as datetime.<name>, date.<name>


def _is_process_os(name: str) -> bool:
    return name in _PROCESS_OS or name.startswith(("spawn", "exec"))


def _is_process_module(module: str) -> bool:
    return module in _PROCESS_MODULES or module.split(".")[0] in _PROCESS_MODULES


def _imported_effect(node: ast.Import | ast.ImportFrom) -> str:
    """``process`` or ``clock`` for an import of what starts processes or reads the time, "" for another."""
    if isinstance(node, ast.Import):
        return "process" if any(_is_process_module(a.name) for a in node.names) else ""
    module, names = node.module or "", {a.name for a in node.names}
    if _is_process_module(module) or names & _PROCESS_NAMES or (module == "os" and any(map(_is_process_os, names))):
        return "process"
    if module == "time" and names & _CLOCK_TIME:
        return "clock"
    return ""


def _effect_of(node: ast.AST) -> str:
    """``environment``, ``write``, ``process``, ``clock`` or "" for one node."""
    if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}:
        return "environment"
    if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level):
        return _imported_effect(node)
    if isinstance(node, ast.Name) and node.id in _PROCESS_NAMES:
        return "process"
    if isinstance(node, ast.Attribute):   # os.getpid, time.monotonic, datetime.now: called or passed on (a default)
        owner = node.value.id if isinstance(node.value, ast.Name) else node.value.attr if isinstance(node.value, ast.Attribute) else ""
        if node.attr in _PROCESS_NAMES or (owner == "os" and _is_process_os(node.attr)) or owner == "multiprocessing":
            return "process"
        if (owner == "time" and node.attr in _CLOCK_TIME) or (owner in {"datetime", "date"} and node.attr in _CLOCK_DATETIME):
            return "clock"
    if not isinstance(node, ast.Call):
        return ""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
    if name in _WRITING_CALLS or (name in _WRITING_OS_CALLS and owner in {"os", "shutil"}):
        return "write"
    if name == "open":
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
            return "write"
    return ""


def _side_effects(tree: ast.AST, where: str = "<module>") -> set[tuple[str, str]]:
    """(function, kind) for each side effect: the innermost function or method it is in (``Class.method``, a nested
    function as ``outer.inner``), ``<module>`` at module level."""
    found: set[tuple[str, str]] = set()
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found |= _side_effects(child, child.name if where == "<module>" else f"{where}.{child.name}")
            continue
        if kind := _effect_of(child):
            found.add((where, kind))
        found |= _side_effects(child, where)
    return found


def engine_side_effects(root: Path = REPO) -> set[tuple[str, str, str]]:
    """(file, function, kind) of every side effect in ``root``/engine."""
    return {(str(path.relative_to(root)), function, kind)
            for path in sorted((root / "engine").rglob("*.py"))
            for function, kind in _side_effects(ast.parse(path.read_text(encoding="utf-8")))}


def test_the_engine_writes_no_file_reads_no_environment_starts_no_process_and_reads_no_clock_but_its_port() -> None:
    found = engine_side_effects()
    assert found - ENGINE_SIDE_EFFECTS == set(), "I/O, processes or a clock in the engine: move it behind a port, into an adapter"
    assert ENGINE_SIDE_EFFECTS - found == set(), "an allowed exception is gone: remove it from ENGINE_SIDE_EFFECTS"


def test_the_side_effect_scan_sees_writes_and_the_environment_in_their_function() -> None:
    seen = _side_effects(ast.parse("import os\nos.environ.get('X')\nopen(p, 'wb')\np.write_text('x')\nos.replace(a, b)"))
    assert seen == {("<module>", "environment"), ("<module>", "write")}
    assert _side_effects(ast.parse("open(p)\nopen(p, 'rb')\ntext.replace('a', 'b')\np.read_text()")) == set()
    nested = "def update(p):\n    p.write_text('x')\nclass Case:\n    def load(self):\n        def copy():\n            t.write_text('x')\n"
    assert _side_effects(ast.parse(nested)) == {("update", "write"), ("Case.load.copy", "write")}


def test_the_scan_sees_processes_and_clocks_imported_called_or_passed_on() -> None:
    processes = ("import multiprocessing\n", "import subprocess\n", "import multiprocessing.pool\n",
                 "from concurrent.futures import Future, ProcessPoolExecutor\n", "from concurrent.futures.process import BrokenProcessPool\n",
                 "from os import getpid\n", "from os import execv\n", "x = os.getpid()\n", "os._exit(1)\n", "os.kill(pid, 9)\n",
                 "ctx = multiprocessing.get_context('spawn')\n", "pool: ProcessPoolExecutor | None = None\n")
    for source in processes:
        assert _side_effects(ast.parse(source)) == {("<module>", "process")}, source
    clocks = ("from time import monotonic\n", "t = time.monotonic()\n", "t = time.time()\n", "time.sleep(0.5)\n",
              "def f(now=time.monotonic):\n    pass\n", "d = datetime.now(timezone.utc)\n", "d = datetime.datetime.utcnow()\n",
              "d = date.today()\n")
    for source in clocks:
        assert {kind for _, kind in _side_effects(ast.parse(source))} == {"clock"}, source
    allowed = ("import os\nimport time\nimport threading\n", "from concurrent.futures import Future, ThreadPoolExecutor, wait\n",
               "b = os.urandom(16)\n", "y = time.gmtime(e).tm_year\n", "n = self._clock.now()\n", "t = threading.Thread(target=f)\n",
               "from engine.billing.ports import BatchWorkers\n", "from . import time\n")
    for source in allowed:
        assert _side_effects(ast.parse(source)) == set(), source


def test_a_process_pool_or_a_clock_in_the_engine_fails_the_check(tmp_path: Path) -> None:
    # what engine/billing/workers.py held before its pool moved to servers/adapters/bill_run_processes.py
    (tmp_path / "engine" / "billing").mkdir(parents=True)
    (tmp_path / "engine" / "billing" / "workers.py").write_text(
        "import multiprocessing\nimport os\nimport time\nfrom concurrent.futures import ProcessPoolExecutor\n\n"
        "class WorkerPool:\n    def _executor(self):\n        return ProcessPoolExecutor(2, initargs=(os.getpid(),))\n\n"
        "    def warm(self):\n        return time.monotonic()\n")
    assert engine_side_effects(tmp_path) == {("engine/billing/workers.py", "<module>", "process"),
                                             ("engine/billing/workers.py", "WorkerPool._executor", "process"),
                                             ("engine/billing/workers.py", "WorkerPool.warm", "clock")}
