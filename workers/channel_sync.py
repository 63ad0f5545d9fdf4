"""Channel sync: per-store stock pushed to the mini-program shop."""
from __future__ import annotations

from hub.flows import channel_stock  # noqa: F401  (registers the consumer)

from .dependencies import HubCore
from .subscribe import consume_batch


class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()

    # A burst of stock events is applied in one transaction, one push per (SKU, store) in it.
    on_stock_changed = consume_batch("channel_sync.publish_stock")
