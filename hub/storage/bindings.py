"""The database-backed binder: external ids <-> canonical ids per (system, kind)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.storage.tables import Binding
from hub.storage.upsert import insert_ignore

# A unit of work that makes outbound calls lends its session here, so a binding a connector
# records (the POS's id for a pushed order) commits with that work. A second writing session
# would wait on SQLite's write lock, which the unit of work itself holds.
_writer: ContextVar[Session | None] = ContextVar("hub_binding_writer", default=None)


@contextmanager
def bind_within(session: Session) -> Iterator[None]:
    """Record bindings made in this block in `session`'s transaction instead of a session of their own."""
    token = _writer.set(session)
    try:
        yield
    finally:
        _writer.reset(token)


class SqlBinder:
    """Each lookup opens a short session; bindings change rarely, so lookups are cached."""

    def __init__(self, session_factory: Callable[[], Session]):
        self._session_factory = session_factory
        self._to_int: dict[tuple[str, str, str], str] = {}
        self._to_ext: dict[tuple[str, str, str], str] = {}

    def _lookup(self, system: str, kind: str, column: str, value: str) -> Binding | None:
        with self._session_factory() as session:
            # A lookup may run inside another unit of work's transaction: read without the writer lock.
            session.connection(execution_options={"read_only": True})
            stmt = select(Binding).where(Binding.system == system, Binding.kind == kind,
                                         getattr(Binding, column) == value)
            return session.execute(stmt).scalar_one_or_none()

    def to_internal(self, system: str, kind: str, external_id: str) -> str | None:
        key = (system, kind, external_id)
        if key not in self._to_int:
            row = self._lookup(system, kind, "external_id", external_id)
            if row is None:
                return None
            self._to_int[key] = row.internal_id
        return self._to_int[key]

    def to_external(self, system: str, kind: str, internal_id: str) -> str | None:
        key = (system, kind, internal_id)
        if key not in self._to_ext:
            row = self._lookup(system, kind, "internal_id", internal_id)
            if row is None:
                return None
            self._to_ext[key] = row.external_id
        return self._to_ext[key]

    def bind(self, system: str, kind: str, external_id: str, internal_id: str) -> None:
        values = {"system": system, "kind": kind, "external_id": external_id, "internal_id": internal_id}
        outer = _writer.get()
        if outer is not None:
            # Cached before that commit: if it rolls back, the external id is still the system's
            # own (it exists there), and the retry binds it again.
            insert_ignore(outer, Binding, values)
        else:
            with self._session_factory() as session:
                insert_ignore(session, Binding, values)
                session.commit()
        self._to_int[(system, kind, external_id)] = internal_id
        self._to_ext[(system, kind, internal_id)] = external_id
