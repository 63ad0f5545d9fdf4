"""Channel sync: per-store stock pushed to the mini-program shop."""
from __future__ import annotations

from typing import Any

from hub.consumers import handle_batch
from hub.flows import channel_stock  # noqa: F401  (registers the consumer)

from . import EVENT_SOURCE
from .batching import batch_event_handler
from .dependencies import HubCore


class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()

    # A burst of stock events is applied in one transaction, one push per (SKU, store) in it.
    @batch_event_handler(EVENT_SOURCE, "stock.changed")
    def on_stock_changed(self, envelopes: list[dict[str, Any]]) -> None:
        handle_batch(self.hub, "channel_sync.publish_stock", envelopes)
