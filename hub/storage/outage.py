"""Is this failure an outage of the hub's own infrastructure, rather than a failure of the work?

An outage (the database unreachable, refusing connections, a connection cut, a deadlock or
lock timeout between our own transactions; the flash-sale gate's Redis unreachable) is waited
out: the work is fine and will succeed once it is back. Anything else is the work's own failure.
"""
from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exc as sa

from hub.ports import GateUnavailable


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_outage(error: BaseException) -> bool:
    """True when `error` (or what caused it) says our database is away or contended, or the gate's Redis away."""
    for e in _chain(error):
        if isinstance(e, GateUnavailable):
            return True
        if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
            return True
        # OperationalError: connect refused, "not currently accepting connections", "server closed
        # the connection", deadlock, serialization failure, SQLite "database is locked".
        if isinstance(e, (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError)):
            return True
    return False
