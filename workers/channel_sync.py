"""Channel sync: per-store stock pushed to the mini-program shop."""
from __future__ import annotations

from typing import Any

from hub.consumers import handle_once
from hub.flows import channel_stock  # noqa: F401  (registers the consumer)

from . import on_event
from .dependencies import HubCore


class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()

    @on_event("stock.changed")
    def on_stock_changed(self, envelope: dict[str, Any]) -> None:
        handle_once(self.hub, "channel_sync.publish_stock", envelope)
