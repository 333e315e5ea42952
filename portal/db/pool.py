"""The psycopg pool of the web process: told apart when full or facing a silent server,
and quick to recover once the server is back.

**Why a PoolTimeout happened.** ``getconn`` raises the same ``PoolTimeout`` when every
connection is in use by other requests and when the pool cannot open one because the
server is down or hangs (accepts TCP, never answers). The pool opens its connections in
its own worker threads through ``connection_class.connect``; :class:`ObservedConnection`
records, per alias, the attempts in flight and the outcome of the last one, so that
:func:`pool_failure` can say which it was: a connection attempt pending since before the
request began waiting, or a failed attempt with no success since, means the database is
not answering (a 503 "Database unavailable", ``/readyz`` "database unreachable"); no
attempt in trouble means the pool is full (503 "Database busy").

**Asking again while waiting**, so the pool keeps trying to reconnect while someone
waits for it (:meth:`PortalPool._wait`), and a short ``reconnect_timeout``
(``DATABASE_POOL_RECONNECT_TIMEOUT``) so that a connection lost in an outage is retried
after a quarter of a second, not the pool's own one-second backoff.

**Checking a connection without sleeping.** psycopg_pool's own ``check`` loop sleeps a
second (its reconnection backoff) after each pooled connection that fails its check;
after a database restart every idle connection of the pool is dead, so a request paid
a second or more before getting a fresh one. :class:`PortalPool` checks the connection
it hands out itself and, when it is dead, returns it (the pool discards it and opens a
replacement at once) and takes the next one straight away.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

#: A waiting request asks the pool again this often (see :meth:`PortalPool.getconn`).
WAIT_SLICE_SECONDS = 0.25
#: An attempt pending at least this long, with no success meanwhile, is a server that
#: does not answer (a connection to a live server takes milliseconds).
SLOW_ATTEMPT_SECONDS = 0.5


class _Attempts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[str, float]] = {}
        self.last_ok: dict[str, float] = {}
        self.last_failure: dict[str, tuple[float, BaseException]] = {}
        self.counter = 0

    def begin(self, alias: str) -> int:
        with self.lock:
            self.counter += 1
            self.pending[self.counter] = (alias, time.monotonic())
            return self.counter

    def end(self, token: int, exc: BaseException | None) -> None:
        with self.lock:
            alias, _started = self.pending.pop(token)
            if exc is None:
                self.last_ok[alias] = time.monotonic()
            else:
                self.last_failure[alias] = (time.monotonic(), exc)

    def failure(self, alias: str, since: float) -> BaseException | None:
        now = time.monotonic()
        with self.lock:
            ok = self.last_ok.get(alias, float("-inf"))
            if ok >= since:
                return None
            failed = self.last_failure.get(alias)
            if failed is not None and failed[0] > ok:
                return failed[1]
            stuck = [
                started
                for pending_alias, started in self.pending.values()
                if pending_alias == alias and started > ok
            ]
        if stuck and now - min(stuck) >= SLOW_ATTEMPT_SECONDS:
            return psycopg.OperationalError(
                f"no answer to a connection attempt in {now - min(stuck):.1f} s"
            )
        return None


_attempts = _Attempts()


def pool_failure(alias: str, since: float) -> BaseException | None:
    """What kept the pool of ``alias`` from opening a connection while a request waited
    from ``since`` (``time.monotonic()``): the last failed attempt, or an error standing
    for an attempt still without an answer; None when the pool was simply full."""
    return _attempts.failure(alias, since)


class ObservedConnection(psycopg.Connection):
    """A psycopg connection whose opening is recorded (see the module's doc)."""

    portal_alias = "default"

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
        token = _attempts.begin(cls.portal_alias)
        try:
            connection = super().connect(conninfo, **kwargs)
        except BaseException as exc:
            _attempts.end(token, exc)
            raise
        _attempts.end(token, None)
        return connection


def observed_connection_class(alias: str) -> type[ObservedConnection]:
    return type(f"ObservedConnection_{alias}", (ObservedConnection,), {"portal_alias": alias})


class PortalPool(ConnectionPool):
    """A ConnectionPool whose ``getconn`` checks the connection without a backoff sleep.

    Create it with ``check=None``; ``checked`` says whether to check at all (Django's
    ``CONN_HEALTH_CHECKS``)."""

    def __init__(self, *args: Any, checked: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.portal_checked = checked

    def getconn(self, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        # Each dead connection is discarded and replaced by the pool, so this ends: at
        # worst every connection of the pool is tried once, then a new one is awaited.
        for _ in range(self.max_size + 1):
            connection = self._wait(deadline)
            if not self.portal_checked:
                return connection
            try:
                ConnectionPool.check_connection(connection)
            except psycopg.Error:
                self.putconn(connection)
                continue
            return connection
        raise PoolTimeout(f"no working connection within {self.timeout:.2f} sec")

    def _wait(self, deadline: float) -> Any:
        """A connection by ``deadline``, asking again every WAIT_SLICE_SECONDS.

        The pool gives up reconnecting after ``reconnect_timeout`` and tries again only
        when a request starts waiting; a request that keeps waiting would leave the pool
        idle however early the server comes back. Asking again lets the pool start a
        new attempt, so after an outage a connection is opened within about a slice of
        the server's return, not at the next request."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"couldn't get a connection after {self.timeout:.2f} sec")
            try:
                return super().getconn(timeout=min(remaining, WAIT_SLICE_SECONDS))
            except PoolTimeout:
                continue
