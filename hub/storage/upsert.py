"""INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Any, values: dict[str, Any]) -> bool:
    """Insert a row unless its key already exists. Returns True if a row was inserted."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).values(**values).on_conflict_do_nothing()
    return session.execute(stmt).rowcount == 1


def insert_ignore_many(session: Session, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert many rows in one statement, skipping those whose key exists. Returns how many were inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return session.execute(module.insert(table).values(rows).on_conflict_do_nothing()).rowcount
