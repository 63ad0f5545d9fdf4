"""`column IN (list)` whose statement text never changes with the list's length.

An expanding IN (`bindparam(..., expanding=True)`) is re-rendered on every execution, one placeholder per
item (SQLAlchemy's post-compile step: a tenth of a till sale's CPU in the gateway). On PostgreSQL the list goes
as one array parameter instead, `column = ANY(:list)`, so the statement is compiled once and sent as is;
SQLite has no arrays and keeps the expanding IN. `ByDialect` builds a statement once per dialect."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import any_, bindparam
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
