"""Service methods subscribed from the event catalogue (`hub/events.py`), not from repeated strings."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.events import event_handler

from hub import events, flows
from hub.consumers import handle_batch

from . import EVENT_SOURCE
from .batching import batch_event_handler


def consume(consumer: str) -> Callable[[Any, dict[str, Any]], None]:
    """A nameko event handler that runs flow consumer `consumer` on the event the catalogue gives it.

    nameko acks a failed worker's message by default; `flows.handle` returns only once the effect or
    the dead letter is committed, so anything escaping it (a bug) puts the message back on its queue
    (`requeue_on_error`) instead of losing it."""
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, consumer, envelope)
    handle.__doc__ = f"{events.event_of(consumer)} -> {consumer}"
    handle.consumer = consumer          # type: ignore[attr-defined]  (read by the catalogue test)
    return event_handler(EVENT_SOURCE, events.event_of(consumer), requeue_on_error=True)(handle)


def consume_batch(consumer: str) -> Callable[[Any, list[dict[str, Any]]], None]:
    """Like `consume`, but the messages come in batches (`workers/batching.py`) and are acknowledged
    together once every one's effect or dead letter is committed."""
    def handle(self: Any, envelopes: list[dict[str, Any]]) -> None:
        handle_batch(self.hub, consumer, envelopes)
    handle.__doc__ = f"{events.event_of(consumer)} -> {consumer} (in batches)"
    handle.consumer = consumer          # type: ignore[attr-defined]  (read by the catalogue test)
    return batch_event_handler(EVENT_SOURCE, events.event_of(consumer), requeue_on_error=True)(handle)
