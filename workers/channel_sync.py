"""Channel sync: per-store stock pushed to the mini-program shop."""
from __future__ import annotations

from hub.flows import channel_stock  # noqa: F401  (registers the consumer)

from .dependencies import HubCore
from .subscribe import consume


class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()

    on_stock_changed = consume("channel_sync.publish_stock")
