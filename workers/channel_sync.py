"""Channel sync: per-store stock pushed to the mini-program shop."""
from __future__ import annotations

from typing import Any

from nameko.events import event_handler

from hub.consumers import handle_once
from hub.flows import channel_stock  # noqa: F401  (registers the consumer)

from . import EVENT_SOURCE
from .dependencies import HubCore


class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()

    @event_handler(EVENT_SOURCE, "stock.changed")
    def on_stock_changed(self, envelope: dict[str, Any]) -> None:
        handle_once(self.hub, "channel_sync.publish_stock", envelope)
