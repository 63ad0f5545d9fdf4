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
    """A nameko event handler that runs flow consumer `consumer` on the event the catalogue gives it."""
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, consumer, envelope)
    handle.__doc__ = f"{events.event_of(consumer)} -> {consumer}"
    handle.consumer = consumer          # type: ignore[attr-defined]  (read by the catalogue test)
    return event_handler(EVENT_SOURCE, events.event_of(consumer))(handle)


def consume_batch(consumer: str) -> Callable[[Any, list[dict[str, Any]]], None]:
    """Like `consume`, but the messages come in batches (`workers/batching.py`), applied in one transaction."""
    def handle(self: Any, envelopes: list[dict[str, Any]]) -> None:
        handle_batch(self.hub, consumer, envelopes)
    handle.__doc__ = f"{events.event_of(consumer)} -> {consumer} (in batches)"
    handle.consumer = consumer          # type: ignore[attr-defined]  (read by the catalogue test)
    return batch_event_handler(EVENT_SOURCE, events.event_of(consumer))(handle)
