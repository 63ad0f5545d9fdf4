"""Declare the hub's exchange and every durable event queue before anything publishes.

RabbitMQ confirms and then silently drops an event published to an exchange with no
bound queue, so queues must exist before the relay sends the first event — not only
when a consumer happens to be running. `hub broker setup` and the relay both call this.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Protocol

from kombu import Connection, Queue
from nameko.events import EventHandler
from nameko.standalone.events import get_event_exchange

from . import EVENT_SOURCE


class _Service(Protocol):
    name: str


def event_queues(service_classes: Iterable[type[_Service]]) -> list[Queue]:
    """The queues nameko's EventHandler would declare for these services (same names and flags)."""
    queues = []
    for cls in service_classes:
        for method_name, method in inspect.getmembers(cls, inspect.isfunction):
            for entrypoint in getattr(method, "nameko_entrypoints", ()):
                if isinstance(entrypoint, EventHandler):
                    source, event_type = entrypoint.source_service, entrypoint.event_type
                    name = f"evt-{source}-{event_type}--{cls.name}.{method_name}"
                    queues.append(Queue(name, exchange=get_event_exchange(source, {}), routing_key=event_type,
                                        durable=True, auto_delete=False, exclusive=False))
    return queues


def declare_all(broker_url: str, service_classes: Iterable[type], transport_options: dict | None = None) -> int:
    """Declare the event exchange and the queues; returns how many queues."""
    queues = event_queues(service_classes)
    with Connection(broker_url, transport_options=transport_options or {}) as conn:
        channel = conn.default_channel
        get_event_exchange(EVENT_SOURCE, {})(channel).declare()
        for q in queues:
            q(channel).declare()
    return len(queues)


def queue_depths(broker_url: str, service_classes: Iterable[type], transport_options: dict | None = None,
                 ) -> dict[str, int]:
    """Messages ready in each event queue (a passive declare: nothing is created), for the console and /metrics."""
    depths: dict[str, int] = {}
    with Connection(broker_url, transport_options=transport_options or {}, connect_timeout=2) as conn:
        channel = conn.default_channel
        for q in event_queues(service_classes):
            try:
                _, count, _ = channel.queue_declare(q.name, passive=True)
            except Exception:  # noqa: BLE001 - a queue not declared yet has no backlog to show
                channel = conn.channel()
                continue
            depths[q.name.split("--", 1)[-1]] = int(count)
    return depths
