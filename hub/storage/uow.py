"""The unit of work: one business operation, one transaction, its events in the outbox.

Events emitted through `emit` are written to the outbox table in the same transaction
as the change that caused them (in `commit`, just before the commit itself), so a change and
its events commit or vanish together.

Outbox rows committed are also said in this process (`subscribe_outbox`), for a relay in the same process
(embedded mode: SQLite has no NOTIFY); across processes on PostgreSQL the outbox's trigger NOTIFYs instead
(migration 0014).

Writes may also be queued outside the ORM's flush ("detached") and sent together, in one round trip where they can
be, at the latest with the commit. For hot paths (a till's sale, a flash sale's admitted order) whose caller only
answers with what it wrote: the ORM flush's bookkeeping was about half of such an order's CPU, and under load each
round trip to the database waits a turn of the process's busy event loop, so a transaction's rows go in together:
on PostgreSQL as one statement of data-modifying CTEs (a child row's foreign key is checked at the statement's end,
when its parent is there); elsewhere, or for many rows, one statement per table (SQLite has no data-modifying
CTE, and no network round trip to save).

`insert_detached`, `insert_rows` and `update_rows` queue, `guard_detached` queues one conditional statement
sent after all of them (a quota's `UPDATE ... WHERE still allowed`, so the row it locks is held from there to
the commit only, and refused when it changed no row); `write_detached` sends (the unit of work's
commit does too, with the transaction's outbox rows, so nothing is ever left behind). Queued writes are
not visible to statements run in between. ORM objects given to `insert_detached` stay detached; column
defaults that are plain values are set on them, callable ones are applied by the INSERT.
"""
from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, and_, bindparam, insert, inspect, update
from sqlalchemy.orm import Session, sessionmaker

from .. import tracing
from ..events import Event
from . import raw
from .tables import OutboxMessage, utcnow

# -- in-process word that outbox rows were committed ---------------------------------------------------------

_listeners: list[Callable[[], None]] = []


def subscribe_outbox(listener: Callable[[], None]) -> None:
    """`listener()` runs after each commit of a transaction with outbox rows in this process: it must not block."""
    _listeners.append(listener)


def unsubscribe_outbox(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _outbox_committed() -> None:
    for listener in list(_listeners):
        listener()


# -- writes queued outside the ORM, sent together ------------------------------------------------------------

ONE_STATEMENT_MAX = 12                   # more writes than this: a statement per table (few shapes to compile)

# (kind, table, where-columns, value-columns, parameters): kind is "insert" or "update"
Write = tuple[str, Table, tuple[str, ...], tuple[str, ...], dict[str, Any]]


def insert_detached(uow: UnitOfWork, *rows: Any) -> None:
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
        insert_rows(uow, mapper.local_table, [values])


def insert_rows(uow: UnitOfWork, table: Table, rows: list[dict[str, Any]]) -> None:
    """Queue an INSERT of each row (a dict of column values)."""
    uow.pending_writes.extend(("insert", table, (), tuple(row), row) for row in rows)


def update_rows(uow: UnitOfWork, table: Table, where: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Queue an UPDATE per row: the row's `where` columns pick the table row, its other columns are set."""
    uow.pending_writes.extend(("update", table, where, tuple(k for k in row if k not in where), row) for row in rows)


def guard_detached(uow: UnitOfWork, statement: Any, params: dict[str, Any], refused: Callable[[], None]) -> None:
    """Queue a conditional statement built once (its parameters named `g_...`), sent after every queued write;
    `refused()` is called, and should raise, when it changed no row. One per transaction."""
    if uow.guard is not None:
        raise ValueError("one guard per transaction")
    uow.guard = (statement, params, refused)


def write_detached(uow: UnitOfWork) -> None:
    """Send the queued writes, the guard last."""
    pending, guard = uow.pending_writes, uow.guard
    if not pending and guard is None:
        return
    uow.pending_writes, uow.guard = [], None
    conn = uow.connection
    if conn.dialect.name == "postgresql" and 1 < len(pending) + (guard is not None) <= ONE_STATEMENT_MAX:
        shape = tuple(w[:4] for w in pending)
        params = {f"d{i}_{key}": value for i, w in enumerate(pending) for key, value in w[4].items()}
        result: Any = raw.execute(conn, _together(shape, guard[0] if guard else None),
                                  {**params, **(guard[1] if guard else {})})
    else:
        for shape, rows in _runs(pending):               # several rows of a shape: one executemany
            conn.execute(_statement(shape, "p_"), [{f"p_{k}": v for k, v in row.items()} for row in rows])
        result = raw.execute(conn, guard[0], guard[1]) if guard else None
    if guard is not None and result is not None and result.rowcount == 0:
        guard[2]()


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


# -- the unit of work ---------------------------------------------------------------------------------------

_OUTBOX_INSERT = insert(OutboxMessage.__table__)

R = TypeVar("R")


def must_get(session: Session, model: type[R], key: Any, *, lock: bool = False) -> R:
    """A row the caller read before (in this transaction or an earlier one): LookupError if it is gone."""
    row = session.get(model, key, with_for_update=lock)
    if row is None:
        raise LookupError(f"no {model.__name__} {key!r}")
    return row


class UnitOfWork:
    """`with UnitOfWork(factory) as uow: ...; uow.commit()` — rolls back unless committed.

    The transaction is a Core connection of its own, opened on first use (`connection`); the ORM session is made
    only when something asks for it (`session`), bound to that connection, so the two share the transaction. A
    hot path that needs no ORM (a till's sale, channel sync's reads) never pays for a session: making, beginning,
    committing and closing one was a fifth of a sale's CPU. A factory that is not a `sessionmaker` over an
    engine (a test's own) has its session made at the start, and the connection is the session's."""

    def __init__(self, session_factory: Callable[..., Session], *, read_only: bool = False):
        self._session_factory = session_factory
        bind = session_factory.kw.get("bind") if isinstance(session_factory, sessionmaker) else None
        self._engine: Engine | None = bind if isinstance(bind, Engine) else None
        self.read_only = read_only
        self._session: Session | None = None
        self._connection: Connection | None = None
        self.emitted: list[tuple[str, Event]] = []
        self._once: dict[Hashable, str] = {}
        self._outbox: list[dict[str, Any]] = []
        self.pending_writes: list[Write] = []       # queued outside the ORM, in order (`insert_rows`, above)
        self.guard: tuple[Any, dict[str, Any], Callable[[], None]] | None = None

    def __enter__(self) -> UnitOfWork:
        self._session = self._connection = None
        self.emitted, self._once, self._outbox = [], {}, []
        self.pending_writes, self.guard = [], None
        if self._engine is None:
            self._session = self._session_factory()
            if self.read_only:
                self._session.connection(execution_options={"read_only": True})
        return self

    @property
    def connection(self) -> Connection:
        """This unit of work's connection, its transaction begun."""
        if self._engine is None:                   # a test's own factory: the session's connection, as it keeps it
            assert self._session is not None
            return self._session.connection()
        if self._connection is None:
            conn = self._engine.connect()
            if self.read_only:
                # On SQLite a reader begins a plain (deferred) transaction: WAL readers never queue for the writer.
                conn.execution_options(read_only=True)
            self._connection = conn
        if not self._connection.in_transaction():
            self._connection.begin()
        return self._connection

    @property
    def session(self) -> Session:
        """The ORM session, on this unit of work's connection and transaction (made on first use)."""
        if self._session is None:
            self._session = self._session_factory(bind=self.connection, join_transaction_mode="control_fully")
        return self._session

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.read_only:
                self.pending_writes, self.guard = [], None
                self._end(commit=False)
            # A reader's rows stay readable after the block (closed, not expired): it changed nothing.
            if self._session is not None:
                self._session.close()
        finally:
            if self._connection is not None:
                self._connection.close()          # a transaction still open is rolled back
            self._session = self._connection = None

    def _end(self, *, commit: bool) -> None:
        """Commit or roll back the session's transaction and the connection's. The session ends the connection's
        transaction with its own when it took part in it; one begun on the connection after the session's last
        commit (Core statements only since) is ended here."""
        if self._session is not None:
            self._session.commit() if commit else self._session.rollback()
        conn = self._connection
        if conn is not None and conn.in_transaction():
            conn.commit() if commit else conn.rollback()

    def emit(self, event: Event, once_per: Hashable | None = None) -> str:
        """Queue an event; it reaches the outbox with this transaction's commit.

        Events with the same `once_per` key coalesce into the first: "stock of this SKU here changed"
        needs saying once per transaction, however many lines or receipts moved it.
        """
        if not isinstance(event, Event):      # here, not in a consumer a queue later
            raise TypeError(f"uow.emit takes an event of hub/events.py, not {type(event).__name__}")
        if once_per is not None and once_per in self._once:
            return self._once[once_per]
        message_id = str(uuid.uuid4())
        now = utcnow()
        event_type = event.TYPE
        envelope = {"id": message_id, "type": event_type, "occurred_at": now.isoformat(), "data": event.data()}
        self._outbox.append({"message_id": message_id, "event_type": event_type, "payload": envelope,
                             "created_at": now})
        self.emitted.append((message_id, event))
        if once_per is not None:
            self._once[once_per] = message_id
        return message_id

    def write_events(self) -> None:
        """The events emitted so far into the outbox now rather than at commit (same transaction), so that
        a statement that must come last before the commit (a hot row's lock) can."""
        if self._outbox:
            with tracing.span("outbox write"):
                _carry_trace(self._outbox)
                # One Core insert for all of the transaction's events (not an ORM object and flush for each).
                self.connection.execute(_OUTBOX_INSERT, self._outbox)
            self._outbox = []

    def queue_events(self) -> None:
        """The events emitted so far queued with the writes outside the ORM (`insert_rows`, above), so they go
        in with them: one round trip on PostgreSQL, before a guard sent last (a pickup order's stock row)."""
        if self._outbox:
            with tracing.span("outbox write"):
                _carry_trace(self._outbox)
                insert_rows(self, OutboxMessage.__table__, self._outbox)
            self._outbox = []

    def commit(self) -> None:
        has_events = bool(self.emitted)      # some may be in the outbox already (write_events)
        if self._outbox and (self.pending_writes or self.guard is not None):
            self.queue_events()
        write_detached(self)
        self.write_events()
        self._end(commit=True)                     # the session flushes the ORM's rows first, if it has any
        self._once = {}
        if has_events:
            _outbox_committed()                # a relay in this process looks now (embedded mode)

    def rollback(self) -> None:
        self.pending_writes, self.guard = [], None       # the transaction they belonged to is gone
        self._end(commit=False)
        self.emitted, self._once, self._outbox = [], {}, []


def _carry_trace(rows: list[dict[str, Any]]) -> None:
    """The current span's context into each envelope, so the relay's publish continues this trace. Once per
    transaction, not per event: off, nothing is added (an envelope as ever)."""
    context = tracing.traceparent()
    if context is not None:
        tracing.annotate({"hub.events": len(rows), "hub.event_types": sorted({r["event_type"] for r in rows})})
        for row in rows:
            row["payload"][tracing.HEADER] = context
