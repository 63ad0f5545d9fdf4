"""Channel sync: per-store stock pushed to the mini-program shop (`hub/handlers.py`, service
"channel_sync"); a burst of stock events is applied in one transaction, one push per (SKU, store)."""
from __future__ import annotations

from .dependencies import HubCore
from .subscribe import subscribed


@subscribed
class ChannelSyncService:
    name = "channel_sync"
    hub = HubCore()
