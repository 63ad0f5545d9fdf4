"""INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Result, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def rows_affected(result: Result[Any]) -> int:
    """The rows an INSERT, UPDATE or DELETE touched. `Session.execute` is typed to return a Result; for a DML
    statement it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount


def insert_ignore(session: Session, table: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless its key already exists. Returns True if a row was inserted."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values).on_conflict_do_nothing()
    return rows_affected(session.execute(stmt)) == 1


def insert_ignore_many(session: Session | Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows, skipping those whose key exists: one statement built once per table, sent as an
    executemany. A multi-row `.values(rows)` is a new statement each time, compiled per call (a fifth of channel
    sync's CPU, issue 11). On PostgreSQL the statement returns its key: SQLAlchemy sends an ON CONFLICT
    executemany with RETURNING as multi-row VALUES pages ("insertmanyvalues"), and without it as psycopg2's
    executemany, one round trip per row (a channel-sync batch of 100 events marked processed in 100)."""
    if not rows:
        return
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    session.execute(_ignoring(dialect.name, getattr(table, "__table__", table)), rows)


@lru_cache(maxsize=64)
def _ignoring(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return sqlite.insert(table).on_conflict_do_nothing()
