"""Service methods generated from the table of who handles what (`hub/handlers.py`).

`@subscribed` gives a service class one event handler per consumer the table gives its service:
the method is named after the consumer (its broker queue is `evt-hub-<event>--<service>.<method>`),
except where the consumer had another name before the table, whose queue keeps its old name
(`handlers.OLD_QUEUE_METHODS`) so that a deployed broker's waiting messages are still consumed.

A batch consumer's messages come through `BatchEventHandler`: one worker, one transaction, many messages.

Messages are gathered while the handler's batches are busy, or for `window` seconds after the first,
then handed to one worker as a list (at most `max_batch`); each message is acknowledged only when that
worker returned, i.e. after the batch's effect (or each failed message's dead letter) is committed.
At most `max_running` batches run at once: under load the next batch gathers what arrived meanwhile,
so batches grow with the load and coalesce more (one push per SKU and store in a batch) instead of
twenty small batches pushing the same figures side by side. (Not one: embedded, SQLite's single writer
lock is queued for by every gateway worker too, and one batch at a time starved behind them.)
The handler's own queue consumer lets `prefetch` messages be unacknowledged at once (the container's
`max_workers` would cap a batch at 20).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

import eventlet
from nameko.containers import ContainerBeingKilled
from nameko.events import EventHandler
from nameko.messaging import QueueConsumer

from hub import consumers, handlers
from hub.consumers import Consumer, handle_batch

from . import EVENT_SOURCE
from .telemetry import carry_header, traced_event_handler

BATCH_PREFETCH = 1000


class BatchQueueConsumer(QueueConsumer):
    """A queue consumer of its own (nameko shares one per class) for batch handlers, with room for batches."""

    @property
    def prefetch_count(self) -> int:
        return max(self.container.max_workers, BATCH_PREFETCH)


class BatchEventHandler(EventHandler):
    queue_consumer = BatchQueueConsumer()

    def __init__(self, *args: Any, max_batch: int = 500, window: float = 0.005, max_running: int = 4,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_batch, self.window, self.max_running = max_batch, window, max_running
        self._pending: list[tuple[Any, Any]] = []
        self._timer: Any = None
        self._running = 0

    def handle_message(self, body: Any, message: Any) -> None:
        self._pending.append((carry_header(body, message), message))
        if self._running >= self.max_running:
            return                                 # a batch that ends takes what gathered meanwhile
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = eventlet.spawn_after(self.window, self._flush)

    def _flush(self, everything: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and (everything or self._running < self.max_running):
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            messages = [m for _, m in batch]
            self._running += 1
            try:
                self.container.spawn_worker(self, ([b for b, _ in batch],), {},
                                            context_data=self.unpack_message_headers(messages[0]),
                                            handle_result=partial(self._batch_done, messages))
            except ContainerBeingKilled:
                self._running -= 1
                for message in messages:
                    self.queue_consumer.requeue_message(message)

    def _batch_done(self, messages: list[Any], worker_ctx: Any, result: Any = None, exc_info: Any = None) -> Any:
        try:
            for message in messages:
                self.handle_message_processed(message, result, exc_info)
        finally:                                   # an ack that fails must not stop every later batch
            self._running -= 1
            if self._pending and self._timer is None:
                self._timer = eventlet.spawn_after(0, self._flush)     # not from inside this worker's teardown
        return result, exc_info

    def stop(self) -> None:
        self._flush(everything=True)
        super().stop()


batch_event_handler = BatchEventHandler.decorator


class _Service(Protocol):
    name: str


C = TypeVar("C", bound=type[_Service])


def consume(consumer: Consumer) -> Callable[[Any, dict[str, Any]], None]:
    """A nameko event handler that runs `consumer` on its event (its filter first).

    nameko acks a failed worker's message by default; `consumers.handle` returns only once the effect or
    the dead letter is committed, so anything escaping it (a bug) puts the message back on its queue
    (`requeue_on_error`) instead of losing it."""
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        consumers.handle(self.hub, consumer, envelope)
    handle.__doc__ = f"{consumer.event.TYPE} -> {consumer.name}"
    handle.consumer = consumer  # type: ignore[attr-defined]  # mypy types no function attributes; the test reads it
    return traced_event_handler(EVENT_SOURCE, consumer.event.TYPE, requeue_on_error=True)(handle)


def consume_batch(consumer: Consumer) -> Callable[[Any, list[dict[str, Any]]], None]:
    """Like `consume`, but the messages come in batches (`BatchEventHandler`, above) and are acknowledged
    together once every one's effect or dead letter is committed."""
    def handle(self: Any, envelopes: list[dict[str, Any]]) -> None:
        handle_batch(self.hub, consumer, envelopes)
    handle.__doc__ = f"{consumer.event.TYPE} -> {consumer.name} (in batches)"
    handle.consumer = consumer  # type: ignore[attr-defined]  # mypy types no function attributes; the test reads it
    return batch_event_handler(EVENT_SOURCE, consumer.event.TYPE, requeue_on_error=True)(handle)


def method_name(consumer: Consumer) -> str:
    """The service method (and so the queue) that runs `consumer`."""
    return handlers.OLD_QUEUE_METHODS.get(consumer.name, consumer.name)


def subscribed(cls: C) -> C:
    """Add to service `cls` a handler for every consumer the table gives `cls.name`."""
    for consumer in handlers.of_service(cls.name):
        setattr(cls, method_name(consumer), consume_batch(consumer) if consumer.batch else consume(consumer))
    return cls
