"""What wakes an idle relay: PostgreSQL's NOTIFY from the outbox's trigger (migration 0014), or on SQLite the
in-process word of a commit (`hub/storage/uow.py` `subscribe_outbox`). Either way the relay still looks at the outbox
every `poll` seconds, so a lost notification (a dropped LISTEN connection, a writer in another process on
SQLite) costs at most that long, never an event."""
from __future__ import annotations

import logging
from typing import Any

from eventlet.green import threading as green_threading
from eventlet.hubs import trampoline
from sqlalchemy.engine import Engine

from hub.storage.uow import subscribe_outbox, unsubscribe_outbox

CHANNEL = "hub_outbox"
log = logging.getLogger(__name__)


class _Quiet(Exception):
    """No notification within the timeout."""


class PgWakeup:
    """LISTEN on a connection of its own (out of the pool, autocommit); `wait` returns on a NOTIFY or timeout."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Any = None

    def _listen(self) -> Any:
        if self._conn is None:
            proxied = self.engine.raw_connection()
            proxied.detach()                       # ours for good: the pool neither resets nor reuses it
            conn = proxied.dbapi_connection
            if conn is None:                       # only after the proxy was closed, which nothing did here
                raise RuntimeError("the LISTEN connection is closed")
            conn.autocommit = True
            cur = conn.cursor()
            try:
                cur.execute(f"LISTEN {CHANNEL}")
            finally:
                cur.close()
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> bool:
        """True when notified (or when the LISTEN connection failed: look now, listen again next time)."""
        try:
            conn = self._listen()
            if not conn.notifies:
                try:
                    trampoline(conn.fileno(), read=True, timeout=timeout, timeout_exc=_Quiet)
                except _Quiet:
                    return False
                conn.poll()
            conn.notifies.clear()
            return True
        except Exception as exc:                   # database away: the relay's own loop waits it out
            log.warning("outbox relay: LISTEN %s lost (%s); polling meanwhile", CHANNEL, exc)
            self.close()
            trampoline_sleep(min(timeout, 1.0))
            return True

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # a dead connection may fail to close; nothing to do about it
                pass
        self._conn = None


class LocalWakeup:
    """Woken by commits in this process (the embedded mode's writers and relay share it)."""

    def __init__(self) -> None:
        self._event = green_threading.Event()       # green whether or not the process is monkey-patched
        subscribe_outbox(self._event.set)

    def wait(self, timeout: float) -> bool:
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def close(self) -> None:
        unsubscribe_outbox(self._event.set)


def trampoline_sleep(seconds: float) -> None:
    import eventlet
    eventlet.sleep(seconds)


def wakeup_for(engine: Engine) -> PgWakeup | LocalWakeup:
    return PgWakeup(engine) if engine.dialect.name == "postgresql" else LocalWakeup()
