"""Hot statements straight on the DB-API cursor (psycopg2): compiled once, bound and read as SQLAlchemy would,
without its per-execute machinery.

Why: on this project's 2-core machine SQLAlchemy's `Connection.execute` of a statement it has compiled and
cached costs about 110 µs of CPU, the same statement on the cursor 64 µs (`make bench`'s single receipt runs
three or four of them per sale, channel sync a dozen per batch); most of the difference is the execution context
and the result object made per execute.

`execute(conn, statement, params)` runs a statement built once (a module's constant, or a builder's cached
result): on psycopg2, compiled on first use and then sent on the connection's own cursor, in the connection's
transaction (begun here if it was not). Parameters go through each bind's type processor and rows through each
column's result processor, and cursor-execute listeners are called (with no execution context), as
SQLAlchemy's own execute does; a DB-API error goes through SQLAlchemy's error
handling (so a lost connection invalidates the pool and reads as an outage, a unique violation is an
`IntegrityError`). Anything this cannot do as SQLAlchemy would — another driver (SQLite), many parameter sets
(SQLAlchemy batches them), expanding IN lists, Python-side column defaults, escaped bind names — is handed to
`conn.execute` unchanged, so the answer is the same either way.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None
CACHE_MAX = 512          # distinct statements compiled here; beyond it (statements built per call) SQLAlchemy runs them


class Rows:
    """A statement's rows (named tuples) and row count, read whole: the little of a result the hot paths use."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return self.rows

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


class _Compiled:
    """One statement compiled for one dialect: its SQL, each parameter's default and processor, the row shape."""

    __slots__ = ("statement", "sql", "defaults", "processors", "row", "readers")

    def __init__(self, statement: Any, sql: str, defaults: dict[str, Any], processors: dict[str, Processor],
                 row: type | None, readers: list[Processor] | None):
        self.statement, self.sql, self.defaults, self.processors = statement, sql, defaults, processors
        self.row, self.readers = row, readers


_FALLBACK = object()                              # compiled, and found to be one for SQLAlchemy to run
_compiled: dict[tuple[int, str], tuple[Any, Any]] = {}     # (id(statement), dialect) -> (statement, _Compiled)


def _compile(statement: ClauseElement, conn: Connection) -> Any:
    dialect = conn.dialect
    compiled: Any = statement.compile(dialect=dialect)
    if (compiled.positional or compiled.escaped_bind_names or compiled.post_compile_params
            or compiled.literal_execute_params or getattr(compiled, "insert_prefetch", None)
            or getattr(compiled, "update_prefetch", None)):
        return _FALLBACK
    defaults = compiled.construct_params(_check=False)
    processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                  for name, bind in compiled.binds.items()}
    columns = list(getattr(statement, "exported_columns", ()))
    row = namedtuple("Row", [c.key for c in columns], rename=True) if columns else None
    readers = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    return _Compiled(statement, compiled.string, defaults, processors, row, readers if any(readers) else None)


def _compiled_for(statement: Any, conn: Connection) -> Any:
    key = (id(statement), conn.dialect.name)
    held = _compiled.get(key)
    if held is not None and held[0] is statement:
        return held[1]
    made = _compile(statement, conn)
    if len(_compiled) < CACHE_MAX:
        _compiled[key] = (statement, made)       # the statement held too: its id is never another's
    return made


def execute(conn: Connection, statement: Any, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
            ) -> Rows:
    """Run `statement` (built once) with `params` on `conn`, in its transaction: its rows and row count."""
    if conn.dialect.driver != "psycopg2" or not isinstance(params, Mapping | None):
        return _by_sqlalchemy(conn, statement, params)
    compiled = _compiled_for(statement, conn)
    if compiled is _FALLBACK:
        return _by_sqlalchemy(conn, statement, params)
    bound = {**compiled.defaults, **params} if params else dict(compiled.defaults)
    for name, process in compiled.processors.items():
        if process is not None:                   # None too: SQLAlchemy hands every value to its processor
            bound[name] = process(bound.get(name))
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.cursor()
    sql, dispatch = compiled.sql, conn.dispatch
    try:
        for before in dispatch.before_cursor_execute:       # listeners see the statement as from SQLAlchemy
            sql, bound = before(conn, cursor, sql, bound, None, False)
        cursor.execute(sql, bound)
        for after in dispatch.after_cursor_execute:
            after(conn, cursor, sql, bound, None, False)
        rows = cursor.fetchall() if compiled.row is not None else []
        rowcount = cursor.rowcount
    except conn.dialect.loaded_dbapi.Error as exc:
        # SQLAlchemy's own handling: the error wrapped, a disconnect invalidating the pool (`storage/outage.py`)
        conn._handle_dbapi_exception(exc, sql, bound, cursor, None)
        raise                                     # not reached: the handler raises
    finally:
        cursor.close()
    if compiled.row is None:
        return Rows([], rowcount)
    make, readers = compiled.row._make, compiled.readers
    if readers is not None:                       # some column's type reads its values (none: the driver's as is)
        return Rows([make([value if read is None else read(value) for read, value in zip(readers, raw, strict=True)])
                     for raw in rows], rowcount)
    return Rows([make(raw) for raw in rows], rowcount)


def _by_sqlalchemy(conn: Connection, statement: Any, params: Any) -> Rows:
    result = conn.execute(statement, params)
    return Rows(list(result.all()) if result.returns_rows else [], result.rowcount)
