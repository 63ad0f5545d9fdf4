"""Is this failure an outage of the hub's own database, rather than a failure of the work?

An outage (the database unreachable, refusing connections, a connection cut, a deadlock or
lock timeout between our own transactions) is waited out: the work is fine and will succeed
once the database is back. Anything else is the work's own failure.
"""
from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exc as sa


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_outage(error: BaseException) -> bool:
    """True when `error` (or what caused it) says our database is away or contended."""
    for e in _chain(error):
        if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
            return True
        # OperationalError: connect refused, "not currently accepting connections", "server closed
        # the connection", deadlock, serialization failure, SQLite "database is locked".
        if isinstance(e, (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError, sa.TimeoutError)):
            return True
    return False
