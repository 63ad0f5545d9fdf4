"""ERP sync: completed orders to the ERP (and CRM points), the ERP's product master and
warehouse stock pulled on a timer."""
from __future__ import annotations

import logging
from typing import Any

from nameko.timer import timer

from hub import flows
from hub.flows import completed, erp_pull  # noqa: F401  (register consumers)

from . import on_event
from .dependencies import HubCore

log = logging.getLogger(__name__)
PULL_INTERVAL_S = 300


class ErpSyncService:
    name = "erp_sync"
    hub = HubCore()

    @on_event("order.status_changed")
    def sales_order(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "erp_sync.sales_order", envelope)

    @on_event("order.status_changed")
    def crm_points(self, envelope: dict[str, Any]) -> None:
        flows.handle(self.hub, "erp_sync.crm_points", envelope)

    @timer(interval=PULL_INTERVAL_S)
    def pull_erp(self) -> None:
        try:
            erp_pull.pull_products(self.hub)
            erp_pull.pull_warehouse_stock(self.hub)
        except Exception as exc:   # the ERP away: the next tick tries again; nothing to park
            log.warning("ERP pull failed: %s", exc)
