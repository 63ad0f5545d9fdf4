"""ERP sync: completed orders to the ERP (and CRM points), the ERP's product master and
warehouse stock pulled on a timer."""
from __future__ import annotations

import logging

from nameko.timer import timer

from hub.flows import completed, erp_pull  # noqa: F401  (register consumers)

from .dependencies import HubCore
from .subscribe import consume

log = logging.getLogger(__name__)
PULL_INTERVAL_S = 300


class ErpSyncService:
    name = "erp_sync"
    hub = HubCore()

    sales_order = consume("erp_sync.sales_order")
    return_order = consume("erp_sync.return_order")
    crm_points = consume("erp_sync.crm_points")

    @timer(interval=PULL_INTERVAL_S)
    def pull_erp(self) -> None:
        try:
            erp_pull.pull_products(self.hub)
            erp_pull.pull_warehouse_stock(self.hub)
        except Exception as exc:   # the ERP away: the next tick tries again; nothing to park
            log.warning("ERP pull failed: %s", exc)
