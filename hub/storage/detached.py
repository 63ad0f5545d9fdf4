"""New rows written with Core INSERTs, outside the ORM's unit of work, in one round trip where the
database allows it.

For a hot path (a flash sale's admitted order) whose caller only reads the objects back: the flush's
bookkeeping was about half of such an order's CPU, and under a rush each round trip to the database
waits a full turn of the gateway's busy event loop, so the order's four tables go in together.

`insert_detached` queues rows on the session; `write_detached` sends them (the unit of work's commit
does too, so none is ever left behind). Queued rows are not visible to statements run in between.
The objects stay detached; column defaults that are plain values are set on them too, callable ones
are applied by the INSERT only.
"""
from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, bindparam, insert, inspect
from sqlalchemy.orm import Session

PENDING = "hub_detached_rows"          # session.info key: [(table, values), ...] in insertion order


@functools.cache
def _insert(table: Any) -> Any:
    return insert(table)          # built once: its parameters come with each call, so it compiles once


def insert_detached(session: Session, *rows: Any) -> None:
    """Queue each row (parents before children); the session does not track them."""
    pending = session.info.setdefault(PENDING, [])
    for row in rows:
        mapper = inspect(type(row))
        values: dict[str, Any] = {}
        for attr in mapper.column_attrs:
            column = attr.columns[0]
            value = getattr(row, attr.key)
            if value is None and column.default is not None:
                if not column.default.is_scalar:
                    continue                              # a callable default: the INSERT applies it
                value = column.default.arg
                setattr(row, attr.key, value)
            if value is None and column.primary_key and column.autoincrement in (True, "auto"):
                continue                                  # the database numbers it
            values[column.key] = value
        pending.append((mapper.local_table, values))


def write_detached(session: Session) -> None:
    """Send the queued rows: one statement on PostgreSQL (data-modifying CTEs, which run as one
    statement: a child row's foreign key is checked at its end, when the parent is there), one INSERT
    each elsewhere (SQLite has no data-modifying CTE, and no network round trip to save)."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    conn = session.connection()
    if conn.dialect.name != "postgresql" or len(pending) == 1:
        for table, values in pending:
            conn.execute(_insert(table), values)
        return
    shape = tuple((table, tuple(values)) for table, values in pending)
    params = {f"d{i}_{key}": value for i, (_, values) in enumerate(pending) for key, value in values.items()}
    conn.execute(_together(shape), params)


@functools.lru_cache(maxsize=64)
def _together(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> Any:
    """One statement for a shape of rows (each row's table and columns), built once per shape so that
    SQLAlchemy compiles it once (a row is its own single-row INSERT: a multi-row VALUES is never cached);
    the values come as parameters `d{row}_{column}`."""
    inserts = [insert(table).values({key: bindparam(f"d{i}_{key}", type_=table.c[key].type) for key in keys})
               for i, (table, keys) in enumerate(shape)]
    *first, last = inserts
    return last.add_cte(*(stmt.cte(f"detached_{i}") for i, stmt in enumerate(first))) if first else last


def discard_detached(session: Session) -> None:
    """Forget queued rows (the transaction they belonged to was rolled back)."""
    session.info.pop(PENDING, None)
