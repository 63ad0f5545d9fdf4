"""The unit of work: one business operation, one transaction, its events in the outbox.

Events emitted through `emit` are written to the outbox table in the same transaction
as the change that caused them (in `commit`, just before the commit itself), so a change and
its events commit or vanish together.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.orm import Session

from .. import tracing
from ..events import Event
from . import outbox_signal
from .detached import discard_detached, has_pending, insert_rows, write_detached
from .tables import OutboxMessage, utcnow

_OUTBOX_INSERT = insert(OutboxMessage.__table__)

R = TypeVar("R")


def must_get(session: Session, model: type[R], key: Any, *, lock: bool = False) -> R:
    """A row the caller read before (in this transaction or an earlier one): LookupError if it is gone."""
    row = session.get(model, key, with_for_update=lock)
    if row is None:
        raise LookupError(f"no {model.__name__} {key!r}")
    return row


class UnitOfWork:
    """`with UnitOfWork(factory) as uow: ...; uow.commit()` — rolls back unless committed."""

    def __init__(self, session_factory: Callable[[], Session], *, read_only: bool = False):
        self._session_factory = session_factory
        self.read_only = read_only
        self.session: Session
        self.emitted: list[tuple[str, Event]] = []
        self._once: dict[Hashable, str] = {}
        self._outbox: list[dict[str, Any]] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.emitted, self._once, self._outbox = [], {}, []
        if self.read_only:
            # On SQLite a reader begins a plain (deferred) transaction: WAL readers never queue for the writer.
            self.session.connection(execution_options={"read_only": True})
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.read_only:
            self.session.rollback()
        # A reader's rows stay readable after the block (closed, not expired): it changed nothing.
        self.session.close()

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
                self.session.execute(_OUTBOX_INSERT, self._outbox)
            self._outbox = []

    def queue_events(self) -> None:
        """The events emitted so far queued with the writes outside the ORM (storage/detached.py), so they go
        in with them: one round trip on PostgreSQL, before a guard sent last (a pickup order's stock row)."""
        if self._outbox:
            with tracing.span("outbox write"):
                _carry_trace(self._outbox)
                insert_rows(self.session, OutboxMessage.__table__, self._outbox)
            self._outbox = []

    def commit(self) -> None:
        has_events = bool(self.emitted)      # some may be in the outbox already (write_events)
        if self._outbox and has_pending(self.session):
            self.queue_events()
        write_detached(self.session)
        self.write_events()
        self.session.commit()
        self._once = {}
        if has_events:
            outbox_signal.committed()          # a relay in this process looks now (embedded mode)

    def rollback(self) -> None:
        discard_detached(self.session)
        self.session.rollback()
        self.emitted, self._once, self._outbox = [], {}, []


def _carry_trace(rows: list[dict[str, Any]]) -> None:
    """The current span's context into each envelope, so the relay's publish continues this trace. Once per
    transaction, not per event: off, nothing is added (an envelope as ever)."""
    context = tracing.traceparent()
    if context is not None:
        tracing.annotate({"hub.events": len(rows), "hub.event_types": sorted({r["event_type"] for r in rows})})
        for row in rows:
            row["payload"][tracing.HEADER] = context
