"""What the server says about itself: health per service, the calls in flight, and the drain at shutdown.

Health is ``SERVING`` while the database answers.  A call that finds the database unreachable turns it
``NOT_SERVING`` at once, and a monitor thread asks the database every ``health_check_seconds`` and sets
it back (or down).  On SIGTERM the server *drains*: health turns ``NOT_SERVING`` for good (load balancers
stop sending), new calls get ``UNAVAILABLE``, the calls in flight get the grace period to finish, and
whatever still runs after it is cancelled (:mod:`engine.cancellation`) before the server stops.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from grpc_health.v1 import health, health_pb2

from engine.cancellation import CallScope
from servers.errors import driver_cause

log = logging.getLogger("rulebill.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class CallsInFlight:
    """The scopes of the calls running now, so that a drain can wait for them and then cancel the rest."""

    def __init__(self) -> None:
        self._scopes: set[CallScope] = set()
        self._changed = threading.Condition()

    def add(self, scope: CallScope) -> None:
        with self._changed:
            self._scopes.add(scope)

    def remove(self, scope: CallScope) -> None:
        with self._changed:
            self._scopes.discard(scope)
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._scopes)

    def wait_until_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._scopes, timeout)

    def cancel_all(self) -> int:
        with self._changed:
            scopes = list(self._scopes)
        for scope in scopes:
            scope.cancel()
        return len(scopes)


class ServerHealth:
    """The health service's statuses, driven by the database probe, by calls that meet an unreachable
    database, and by the drain."""

    def __init__(self, probe: Callable[[], None], interval: float) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self.calls = CallsInFlight()
        self._services = [""]
        self._probe = probe
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self.draining = False
        self.database_ok = True
        self._set(SERVING)

    def add_services(self, names: list[str]) -> None:
        self._services.extend(names)
        self._set(SERVING if self.database_ok else NOT_SERVING)

    def _set(self, status: int) -> None:
        for name in self._services:
            self.servicer.set(name, status)   # ignored once the drain began: it stays NOT_SERVING

    def start_monitor(self) -> None:
        if self._monitor is None and self._interval > 0:
            self._monitor = threading.Thread(target=self._watch, name="health-monitor", daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_database()

    def check_database(self) -> bool:
        """Ask the database now; health follows the answer. Returns whether it answered."""
        try:
            self._probe()
            ok = True
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means the database is not usable
            log.warning("database check failed: %s: %s", type(exc).__name__, driver_cause(exc))
            ok = False
        self._database(ok)
        return ok

    def database_unreachable(self) -> None:
        """A call met an unreachable database: say so until the monitor finds it again."""
        self._database(False)

    def _database(self, ok: bool) -> None:
        with self._lock:
            changed, self.database_ok = ok != self.database_ok, ok
        if changed:
            log.warning("database %s: health %s", "reachable again" if ok else "unreachable", "SERVING" if ok else "NOT_SERVING")
        self._set(SERVING if ok else NOT_SERVING)

    def drain(self) -> None:
        """Health NOT_SERVING for good; new calls are refused (the interceptor reads ``draining``)."""
        self.draining = True
        self.servicer.enter_graceful_shutdown()

    def stop(self) -> None:
        self._stop.set()
