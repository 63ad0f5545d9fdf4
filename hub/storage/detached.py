"""Writes queued outside the ORM's unit of work and sent together, in one round trip where they can be.

For hot paths (a till's sale, a flash sale's admitted order) whose caller only answers with what it
wrote: the ORM flush's bookkeeping was about half of such an order's CPU, and under load each round
trip to the database waits a turn of the process's busy event loop, so a transaction's rows go in
together: on PostgreSQL as one statement of data-modifying CTEs (a child row's foreign key is checked
at the statement's end, when its parent is there); elsewhere, or for many rows, one statement per
table (SQLite has no data-modifying CTE, and no network round trip to save).

`insert_detached`, `insert_rows` and `update_rows` queue, `guard_detached` queues one conditional statement
sent after all of them (a quota's `UPDATE ... WHERE still allowed`, so the row it locks is held from there to
the commit only, and refused when it changed no row); `write_detached` sends (the unit of work's
commit does too, with the transaction's outbox rows, so nothing is ever left behind). Queued writes are
not visible to statements run in between. ORM objects given to `insert_detached` stay detached; column
defaults that are plain values are set on them, callable ones are applied by the INSERT.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import CursorResult, Table, and_, bindparam, insert, inspect, update
from sqlalchemy.orm import Session

PENDING = "hub_detached_writes"          # session.info key: [Write, ...] in the order they were queued
GUARD = "hub_detached_guard"             # session.info key: (statement, parameters, refused)
ONE_STATEMENT_MAX = 12                   # more writes than this: a statement per table (few shapes to compile)

# (kind, table, where-columns, value-columns, parameters): kind is "insert" or "update"
Write = tuple[str, Table, tuple[str, ...], tuple[str, ...], dict[str, Any]]


def insert_detached(session: Session, *rows: Any) -> None:
    """Queue an INSERT of each ORM object (parents before children); the session does not track them."""
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
        insert_rows(session, mapper.local_table, [values])


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Queue an INSERT of each row (a dict of column values)."""
    pending = session.info.setdefault(PENDING, [])
    pending.extend(("insert", table, (), tuple(row), row) for row in rows)


def update_rows(session: Session, table: Table, where: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Queue an UPDATE per row: the row's `where` columns pick the table row, its other columns are set."""
    pending = session.info.setdefault(PENDING, [])
    pending.extend(("update", table, where, tuple(k for k in row if k not in where), row) for row in rows)


def guard_detached(session: Session, statement: Any, params: dict[str, Any], refused: Callable[[], None]) -> None:
    """Queue a conditional statement built once (its parameters named `g_...`), sent after every queued write;
    `refused()` is called, and should raise, when it changed no row. One per transaction."""
    if GUARD in session.info:
        raise ValueError("one guard per transaction")
    session.info[GUARD] = (statement, params, refused)


def has_pending(session: Session) -> bool:
    return bool(session.info.get(PENDING)) or GUARD in session.info


def write_detached(session: Session) -> None:
    """Send the queued writes, the guard last."""
    pending: list[Write] = session.info.pop(PENDING, None) or []
    guard = session.info.pop(GUARD, None)
    if not pending and guard is None:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql" and 1 < len(pending) + (guard is not None) <= ONE_STATEMENT_MAX:
        shape = tuple(w[:4] for w in pending)
        params = {f"d{i}_{key}": value for i, w in enumerate(pending) for key, value in w[4].items()}
        result: CursorResult[Any] | None = conn.execute(_together(shape, guard[0] if guard else None),
                                                        {**params, **(guard[1] if guard else {})})
    else:
        for shape, rows in _runs(pending):               # several rows of a shape: one executemany
            conn.execute(_statement(shape, "p_"), [{f"p_{k}": v for k, v in row.items()} for row in rows])
        result = conn.execute(guard[0], guard[1]) if guard else None
    if guard is not None and result is not None and result.rowcount == 0:
        guard[2]()


def discard_detached(session: Session) -> None:
    """Forget queued writes (the transaction they belonged to was rolled back)."""
    session.info.pop(PENDING, None)
    session.info.pop(GUARD, None)


def _runs(pending: list[Write]) -> list[tuple[tuple, list[dict[str, Any]]]]:
    """Consecutive writes of one shape (kind, table, columns) go together."""
    runs: list[tuple[tuple, list[dict[str, Any]]]] = []
    for write in pending:
        if runs and runs[-1][0] == write[:4]:
            runs[-1][1].append(write[4])
        else:
            runs.append((write[:4], [write[4]]))
    return runs


@functools.lru_cache(maxsize=256)
def _statement(shape: tuple[str, Table, tuple[str, ...], tuple[str, ...]], prefix: str) -> Any:
    """One INSERT or UPDATE with its values as parameters named `{prefix}{column}`, built once per shape so
    that SQLAlchemy compiles it once."""
    kind, table, where, keys = shape
    values = {key: bindparam(f"{prefix}{key}", type_=table.c[key].type) for key in keys}
    if kind == "insert":
        return insert(table).values(values)
    return update(table).where(and_(*(table.c[k] == bindparam(f"{prefix}{k}") for k in where))).values(values)


@functools.lru_cache(maxsize=64)
def _together(shape: tuple[tuple[str, Table, tuple[str, ...], tuple[str, ...]], ...], guard: Any = None) -> Any:
    """All the writes as one statement: every one but the last a CTE of the last (a multi-row VALUES would
    never be cached, so each row is its own single-row INSERT); parameters `d{write}_{column}`. A guard is the
    last, so the statement's row count is the guard's."""
    statements = [_statement(write, f"d{i}_") for i, write in enumerate(shape)]
    *first, last = [*statements, guard] if guard is not None else statements
    return last.add_cte(*(stmt.cte(f"detached_{i}") for i, stmt in enumerate(first)))
