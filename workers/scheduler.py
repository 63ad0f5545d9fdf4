"""Scheduler: the hub's periodic work as nameko timers."""
from __future__ import annotations

import logging

from nameko.timer import timer

from hub.flows import reconcile
from hub.services import housekeeping

from .dependencies import HubCore

log = logging.getLogger(__name__)


class SchedulerService:
    name = "scheduler"
    hub = HubCore()

    @timer(interval=15)
    def expire_unpaid_orders(self) -> None:
        expired = housekeeping.expire_unpaid(self.hub)
        if expired:
            log.info("expired %d unpaid order(s): %s", len(expired), ", ".join(expired))

    @timer(interval=600)
    def cancel_uncollected_pickups(self) -> None:
        cancelled = housekeeping.cancel_uncollected(self.hub)
        if cancelled:
            log.info("cancelled %d uncollected pickup order(s)", len(cancelled))

    @timer(interval=300)
    def reconcile_channel_stock(self) -> None:
        try:
            reconcile.reconcile_channel_stock(self.hub)     # logs what it repaired
        except Exception as exc:   # a channel away: the next run checks again
            log.warning("channel stock reconciliation failed: %s", exc)
