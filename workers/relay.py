"""The outbox relay: publish committed outbox rows to the broker, mark them sent only
after the broker confirmed them. A crash anywhere between commit and confirm re-sends
(consumers are idempotent), never drops.

On RabbitMQ the relay publishes a batch, then waits once for the broker's confirms of the
whole batch — not one round trip per event.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import eventlet
from kombu import Connection, Producer
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Text, bindparam, cast, select, update

from hub import tracing
from hub.bootstrap import HubContext
from hub.storage import raw
from hub.storage.in_list import ByDialect, in_list
from hub.storage.tables import OutboxMessage, utcnow

from . import EVENT_SOURCE

log = logging.getLogger(__name__)


class PublishNotConfirmed(Exception):
    """The broker nacked, or did not confirm in time: the batch stays unsent and is retried."""


class StoredEnvelope:
    """An envelope as the outbox holds it: its id and its JSON text, published as that text (no decode and
    encode again on the way through: that was a sixth of the relay's CPU). Read like the envelope's dict (decoded
    on first read: only tracing and tests read it)."""

    __slots__ = ("message_id", "json", "_decoded")

    def __init__(self, message_id: str, text: str):
        self.message_id, self.json = message_id, text
        self._decoded: dict[str, Any] | None = None

    def _envelope(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = json.loads(self.json)
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self._envelope()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.message_id if key == "id" else self._envelope().get(key, default)


class OutboxPublisher:
    """Publishes (event_type, envelope) pairs as nameko events from service `hub`; an envelope is a dict or the
    outbox's own JSON text (`StoredEnvelope`)."""

    def __init__(self, broker_url: str, confirm_timeout: float = 10.0, transport_options: dict | None = None):
        self.broker_url, self.confirm_timeout = broker_url, confirm_timeout
        self._transport_options = transport_options or {}
        self._conn: Connection | None = None
        self._producer: Producer | None = None
        self._confirms = False
        self._next_tag = 0
        self._acked = 0
        self._nacked = False

    def _connect(self) -> Producer:
        if self._producer is not None:
            return self._producer
        conn = Connection(self.broker_url, transport_options=self._transport_options)
        conn.ensure_connection(max_retries=3)
        channel = conn.channel()
        exchange = get_event_exchange(EVENT_SOURCE, {})
        exchange(channel).declare()
        self._confirms = conn.transport.driver_type == "amqp"
        if self._confirms:
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._next_tag = self._acked = 0
        self._conn, self._producer = conn, Producer(channel, exchange=exchange, serializer="json")
        return self._producer

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._acked = max(self._acked, tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked = True

    def publish(self, batch: Sequence[tuple[str, dict[str, Any] | StoredEnvelope]]) -> None:
        """Publish every message; return only when the broker has confirmed all of them."""
        spans: list[Any] = []        # traced: one producer span per event, ended once the broker confirmed it
        try:
            producer = self._connect()
            for event_type, envelope in batch:
                headers = {"hub.message_id": envelope.get("id", "")}
                if tracing.enabled():
                    spans.append(_publish_span(event_type, envelope, headers))
                if isinstance(envelope, StoredEnvelope):       # JSON already: sent as it is, typed as JSON
                    producer.publish(envelope.json, routing_key=event_type, delivery_mode=2, headers=headers,
                                     content_type="application/json", content_encoding="utf-8")
                else:
                    producer.publish(envelope, routing_key=event_type, delivery_mode=2, headers=headers)
                self._next_tag += 1
            if self._confirms:
                self._wait_for_confirms()
        except Exception as exc:
            for span in spans:
                tracing.finish(span, exc)
            self.close()                       # a broken channel: start clean next time
            raise
        for span in spans:
            tracing.finish(span)

    def _wait_for_confirms(self) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while self._acked < self._next_tag:
            if self._nacked:
                self._nacked = False
                raise PublishNotConfirmed("the broker refused (nack) part of the batch")
            left = deadline - time.monotonic()
            if left <= 0:
                raise PublishNotConfirmed(f"no confirm within {self.confirm_timeout}s")
            if self._conn is None:                 # closed under us: nothing will confirm
                raise PublishNotConfirmed("the connection closed before the broker confirmed")
            self._conn.drain_events(timeout=left)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # closing a dead connection may fail; nothing to do about it
                pass
        self._conn = self._producer = None


def _publish_span(event_type: str, envelope: dict[str, Any] | StoredEnvelope, headers: dict[str, Any]) -> Any:
    """A producer span continuing the trace the outbox row carries; its context goes in the message's headers."""
    span = tracing.start(f"publish {event_type}", tracing.PRODUCER, parent=envelope.get(tracing.HEADER),
                         attributes={"messaging.system": "rabbitmq", "messaging.destination.name": event_type,
                                     "messaging.message.id": envelope.get("id", "")})
    context = tracing.traceparent(span)
    if context:
        headers[tracing.HEADER] = context
    return span


def relay_once(ctx: HubContext, publisher: OutboxPublisher, batch_size: int = 500) -> int:
    """Publish one batch of unsent outbox rows, oldest first. Returns how many were sent."""
    with ctx.uow() as uow:
        # Core statements, not ORM objects: one select and one update per batch, whatever its size.
        conn = uow.connection                     # on PostgreSQL straight on the cursor (`storage/raw.py`)
        rows = raw.execute(conn, _UNSENT, {"n": batch_size}).all()
        if not rows:
            return 0
        publisher.publish([(r.event_type, StoredEnvelope(r.message_id, r.payload)) for r in rows])
        raw.execute(conn, _MARK_SENT.on(conn), {"ids": [r.id for r in rows], "p_sent_at": utcnow()})
        uow.commit()
        return len(rows)


# Built once (built per batch they were a sixth of the relay's CPU at a till's pace of small batches).
_OUTBOX = OutboxMessage.__table__
_UNSENT = (select(_OUTBOX.c.id, _OUTBOX.c.event_type, _OUTBOX.c.message_id,
                  cast(_OUTBOX.c.payload, Text).label("payload")).where(_OUTBOX.c.sent_at.is_(None))
           .order_by(_OUTBOX.c.id).limit(bindparam("n")).with_for_update(skip_locked=True))
_MARK_SENT = ByDialect(lambda d: update(_OUTBOX).where(in_list(_OUTBOX.c.id, "ids", d))
                       .values(sent_at=bindparam("p_sent_at")))


class RelayLoop:
    """Publish while there is something to publish; then wait to be woken (`workers/outbox_wakeup.py`: a
    PostgreSQL NOTIFY from the outbox's trigger, on SQLite a commit in this process), looking anyway every
    `poll` seconds. After a partial batch it waits `gather` first, so the next batch gathers what arrives
    meanwhile instead of the relay paying a select, a confirm wait and an update for each event or two."""

    def __init__(self, ctx: HubContext, publisher: OutboxPublisher, wakeup: Any, batch_size: int,
                 gather: float, poll: float):
        self.ctx, self.publisher, self.wakeup = ctx, publisher, wakeup
        self.batch_size, self.gather, self.poll = batch_size, gather, poll
        self.running = True

    def run(self) -> None:
        try:
            self._run()
        finally:                       # stopped, or killed by the container: give back the LISTEN connection
            self.wakeup.close()

    def _run(self) -> None:
        while self.running:
            try:
                sent = relay_once(self.ctx, self.publisher, self.batch_size)
            except Exception as exc:   # broker or database away: back off, keep the rows, try again
                log.warning("outbox relay: %s", exc)
                eventlet.sleep(1.0)
                continue
            if sent >= self.batch_size:
                continue
            if sent:
                eventlet.sleep(self.gather)
            self.wakeup.wait(self.poll)

    def stop(self) -> None:
        self.running = False


class OutboxRelay(DependencyProvider):
    """Runs the relay loop in a managed thread of the container that declares it."""

    def __init__(self, idle_sleep: float | None = None, batch_size: int | None = None, poll: float | None = None):
        # After a partial batch, 10 ms for the next one to gather; woken by NOTIFY on PostgreSQL, so an idle relay
        # costs nothing, with a look every second (HUB_RELAY_POLL_MS) should a notification be lost. On SQLite
        # the look stays every idle_sleep (a writer in another process cannot wake it).
        self.idle_sleep = idle_sleep or float(os.environ.get("HUB_RELAY_IDLE_MS", "10")) / 1000
        self.batch_size = batch_size or int(os.environ.get("HUB_RELAY_BATCH_SIZE", "500"))
        self._poll = poll or (float(os.environ["HUB_RELAY_POLL_MS"]) / 1000 if "HUB_RELAY_POLL_MS" in os.environ
                              else None)

    def setup(self) -> None:
        from .dependencies import context_from_config
        from .embedded import transport_options
        from .outbox_wakeup import wakeup_for

        self.ctx = context_from_config(self.container.config)
        self.publisher = OutboxPublisher(self.container.config["AMQP_URI"],
                                         transport_options=transport_options(self.container.config))
        wakeup = wakeup_for(self.ctx.engine)
        poll = self._poll or (1.0 if self.ctx.engine.dialect.name == "postgresql" else self.idle_sleep)
        self.loop = RelayLoop(self.ctx, self.publisher, wakeup, self.batch_size, self.idle_sleep, poll)

    def start(self) -> None:
        self.container.spawn_managed_thread(self.loop.run)

    def stop(self) -> None:
        self.loop.stop()
        self.publisher.close()

    def get_dependency(self, worker_ctx: Any) -> OutboxRelay:
        return self


class RelayService:
    """The outbox relay as a service of its own: run one or more, they share the work (SKIP LOCKED)."""

    name = "relay"
    relay = OutboxRelay()
