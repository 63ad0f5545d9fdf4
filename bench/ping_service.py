"""A consumer for the backbone benchmark: applies each `bench.ping` once (its processed-message
row is the effect), through the same idempotent path every hub consumer uses."""
from __future__ import annotations

from typing import Any

from nameko.events import event_handler

from hub.consumers import Consumer, handle_once
from hub.events import Probe
from workers.dependencies import HubCore


def record_ping(ctx: Any, uow: Any, data: dict[str, Any]) -> None:
    """Nothing beyond the processed-message row handle_once writes with it."""


RECORD_PING = Consumer("bench.ping", Probe, record_ping, "bench_ping")


class PingService:
    name = "bench_ping"
    hub = HubCore()

    @event_handler("hub", "bench.ping")
    def on_ping(self, envelope: dict[str, Any]) -> None:
        handle_once(self.hub, RECORD_PING, envelope)
