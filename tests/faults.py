"""Faults of the hub's own infrastructure, made for real: PostgreSQL refusing connections.

`ALTER DATABASE … ALLOW_CONNECTIONS false` plus terminating the database's backends is an outage
as every hub process sees it (connect refused, open connections cut), without restarting the
server that other databases on this machine share.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool


def _admin(database_url: str):
    url = make_url(database_url)
    return create_engine(url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"), url.database


def refuse_connections(database_url: str) -> None:
    """From now on the database refuses new connections, and its open ones are cut."""
    engine, name = _admin(database_url)
    with engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": name})
    engine.dispose()


def allow_connections(database_url: str) -> None:
    engine, name = _admin(database_url)
    with engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    engine.dispose()


@contextmanager
def database_down(database_url: str) -> Iterator[None]:
    """The database is away inside the block, and back (always) after it."""
    refuse_connections(database_url)
    try:
        yield
    finally:
        allow_connections(database_url)


def database_down_for(database_url: str, seconds: float) -> threading.Thread:
    """Refuse connections now and allow them again after `seconds`, in the background."""
    refuse_connections(database_url)
    timer = threading.Timer(seconds, allow_connections, args=(database_url,))
    timer.daemon = True
    timer.start()
    return timer


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid` (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def command_line(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except FileNotFoundError:
        return []
