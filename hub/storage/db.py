"""Engine and session set-up for SQLite (embedded) and PostgreSQL (production)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# One writer lock per SQLite file per process, shared by every engine on that file: the demo's
# script, `hub run`'s start-up and the services each build their own engine, and two engines
# with a lock each would let two BEGIN IMMEDIATE meet in SQLite's busy wait — which blocks the
# whole eventlet process, lock holder included, until "database is locked" after 30 s.
_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()
_owners: dict[int, int] = {}      # id(lock) -> the thread (green thread under eventlet) holding it


class NestedWriter(RuntimeError):
    """A writing transaction was begun while this thread already holds the SQLite writer lock."""


def _writer_lock(database: str) -> threading.Lock:
    key = str(Path(database).resolve()) if database and database != ":memory:" else f"memory:{id(object())}"
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.Lock())


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and serialised writers."""
    # SQL parameters (buyers' phones and addresses, payment refs) stay out of errors and their tracebacks.
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # Opening a SQLite file is cheap, and a bounded pool can deadlock here: workers
            # queued for the writer lock would hold every pooled connection while the writer
            # needs one more for a read.
            kwargs.setdefault("poolclass", NullPool)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        wal_set: list[bool] = []

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            if not wal_set:
                # Persistent in the file: set once. Asking again on every connect takes a lock,
                # and SQLite's busy wait would then stall the whole eventlet process.
                cur.execute("PRAGMA journal_mode=WAL")
                wal_set.append(True)
            # WAL + NORMAL survives a crash of the process (not of the machine's power) without an
            # fsync per commit: the embedded mode's trade, production runs on PostgreSQL.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        # One writer at a time, queued in Python: under eventlet a green thread waiting on
        # SQLite's busy timeout would block the whole process, holder included.
        writer = _writer_lock(parsed.database or "")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            if conn.get_execution_options().get("read_only"):
                conn.exec_driver_sql("BEGIN")         # WAL readers never wait for the writer
                return
            if _owners.get(id(writer)) == threading.get_ident():
                # A second connection cannot write while this thread's first holds the lock:
                # waiting would deadlock, so say where instead.
                raise NestedWriter("a writing transaction was begun inside another one on the same SQLite file; "
                                   "use the outer unit of work's session")
            writer.acquire()
            _owners[id(writer)] = threading.get_ident()
            conn.info["hub_writer"] = True
            # BEGIN IMMEDIATE takes the write lock up front: a read-then-write on stock
            # can never interleave with another writer (SQLite has no SELECT ... FOR UPDATE).
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except Exception:
                _release(conn)
                raise

        def _release(conn: Any) -> None:
            if conn.info.pop("hub_writer", False):
                _owners.pop(id(writer), None)
                writer.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        return engine
    engine_ping = kwargs.pop("pool_pre_ping", None)
    if "poolclass" not in kwargs:
        # Connections are opened only as a process's concurrency needs them, and kept up to pool_size: a
        # consumer (10 workers) keeps 10; a gateway under a rush keeps ~30 instead of opening (and closing)
        # overflow connections while the rush's admitted orders wait for them (issue 11).
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 10)
    # An executemany of UPDATEs (a batch of receipts' stock rows, channel sync's push numbers) is psycopg2's
    # round trip per row unless batched: pages of statements, one round trip each. INSERTs stay SQLAlchemy's
    # multi-row VALUES. Nothing here reads an executemany's row count (that mode cannot give it).
    if parsed.get_driver_name() == "psycopg2":
        kwargs.setdefault("executemany_mode", "values_plus_batch")
    engine = create_engine(url, pool_pre_ping=bool(engine_ping), **kwargs)
    if engine_ping is None:
        ping_when_idle(engine)
    return engine


POOL_SIZE = 30


def warm_pool(engine: Engine, n: int = POOL_SIZE, prepare: Callable[[Connection], None] | None = None) -> None:
    """Open `n` pooled connections now (a gateway at start), so the first burst of requests finds them open
    rather than each paying a connection's set-up in its own latency; `prepare` runs on each (rolled back),
    so its server process has read the catalogue for what the burst will touch. A database that is away is
    not waited for here: the connections are then opened on demand, as usual."""
    if engine.dialect.name == "sqlite":
        return
    held = []
    try:
        for _ in range(n):
            held.append(engine.connect())
            if prepare is not None:
                prepare(held[-1])
                held[-1].rollback()
    except Exception as exc:                 # the first requests will meet the outage and answer it (503)
        log.warning("could not open the connection pool ahead of time: %s", exc)
    finally:
        for conn in held:
            conn.close()


# A connection that came back to the pool less than this long ago is used without a ping.
IDLE_PING_AFTER_S = 1.0


def ping_when_idle(engine: Engine, idle_s: float = IDLE_PING_AFTER_S) -> None:
    """Ping a pooled connection on checkout only if it sat idle for `idle_s` (SQLAlchemy's pre-ping costs a
    round trip on every checkout: a tenth of a POS sale's statements). A connection in steady use needs
    none; one that died under load fails its statement, which SQLAlchemy sees as a disconnect and answers
    by dropping the whole pool, and which the hub treats as an outage (waited out, or 503 Retry-After)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info["hub_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("hub_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection died while idle: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)

