"""`column IN (list)` whose statement text never changes with the list's length.

An expanding IN (`bindparam(..., expanding=True)`) is re-rendered on every execution, one placeholder per
item (SQLAlchemy's post-compile step: a tenth of a till sale's CPU in the gateway). On PostgreSQL the list goes
as one array parameter instead, `column = ANY(:list)`, so the statement is compiled once and sent as is;
SQLite has no arrays and keeps the expanding IN. `ByDialect` builds a statement once per dialect."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement


def in_list(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name`, for `dialect` (the array typed as the column)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


class ByDialect:
    """A statement built by `build(dialect_name)` on first use for each dialect."""

    def __init__(self, build: Callable[[str], Any]):
        self._build = build
        self._built: dict[str, Any] = {}

    def on(self, conn: Any) -> Any:
        name = conn.dialect.name
        statement = self._built.get(name)
        if statement is None:
            statement = self._built[name] = self._build(name)
        return statement


def in_rows(columns: Sequence[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`(columns)` is one of the rows bound as `name` (`rows_bound`). On PostgreSQL each column's values go as one
    array, zipped back into rows by `unnest`s side by side (set-returning functions in one select list run in
    lockstep): the statement's text never changes with the rows' number. SQLite keeps the expanding IN."""
    key = tuple_(*columns)
    if dialect == "postgresql":
        return key.in_(select(*(func.unnest(bindparam(f"{name}_{i}", type_=ARRAY(c.type)))
                                for i, c in enumerate(columns))))
    return key.in_(bindparam(name, expanding=True))


def rows_bound(conn: Any, name: str, rows: Sequence[tuple[Any, ...]], width: int) -> dict[str, Any]:
    """The parameters of an `in_rows(..., name, ...)` for `rows` (each `width` values long) on `conn`'s dialect."""
    if conn.dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True)) if rows else [()] * width
        return {f"{name}_{i}": list(values) for i, values in enumerate(columns)}
    return {name: list(rows)}
