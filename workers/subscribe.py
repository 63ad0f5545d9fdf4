"""Service methods generated from the table of who handles what (`hub/handlers.py`).

`@subscribed` gives a service class one event handler per consumer the table gives its service:
the method is named after the consumer (its broker queue is `evt-hub-<event>--<service>.<method>`),
except where the consumer had another name before the table, whose queue keeps its old name
(`handlers.OLD_QUEUE_METHODS`) so that a deployed broker's waiting messages are still consumed.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from hub import flows, handlers
from hub.consumers import Consumer, handle_batch

from . import EVENT_SOURCE
from .batching import batch_event_handler
from .telemetry import traced_event_handler


class _Service(Protocol):
    name: str


C = TypeVar("C", bound=type[_Service])


def consume(consumer: Consumer) -> Callable[[Any, dict[str, Any]], None]:
    """A nameko event handler that runs `consumer` on its event (its filter first).

    nameko acks a failed worker's message by default; `flows.handle` returns only once the effect or
    the dead letter is committed, so anything escaping it (a bug) puts the message back on its queue
    (`requeue_on_error`) instead of losing it."""
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, consumer, envelope)
    handle.__doc__ = f"{consumer.event.TYPE} -> {consumer.name}"
    handle.consumer = consumer  # type: ignore[attr-defined]  # mypy types no function attributes; the test reads it
    return traced_event_handler(EVENT_SOURCE, consumer.event.TYPE, requeue_on_error=True)(handle)


def consume_batch(consumer: Consumer) -> Callable[[Any, list[dict[str, Any]]], None]:
    """Like `consume`, but the messages come in batches (`workers/batching.py`) and are acknowledged
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
