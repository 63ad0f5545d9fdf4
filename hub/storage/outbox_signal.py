"""In-process word that outbox rows were committed, for a relay in the same process (embedded mode: SQLite has
no NOTIFY). Across processes on PostgreSQL the outbox's trigger NOTIFYs instead (migration 0014)."""
from __future__ import annotations

from collections.abc import Callable

_listeners: list[Callable[[], None]] = []


def subscribe(listener: Callable[[], None]) -> None:
    """`listener()` runs after each commit of a transaction with outbox rows in this process: it must not block."""
    _listeners.append(listener)


def unsubscribe(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def committed() -> None:
    for listener in list(_listeners):
        listener()
