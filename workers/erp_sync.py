"""ERP sync: completed orders to the ERP (and CRM points), returns and refunds after completion to
the ERP (`hub/handlers.py`, service "erp_sync"), the ERP's product master and warehouse stock
pulled on a timer."""
from __future__ import annotations

import logging

from nameko.timer import timer

from hub.flows import erp_pull

from .dependencies import HubCore
from .subscribe import subscribed

log = logging.getLogger(__name__)
PULL_INTERVAL_S = 300


@subscribed
class ErpSyncService:
    name = "erp_sync"
    hub = HubCore()

    @timer(interval=PULL_INTERVAL_S)
    def pull_erp(self) -> None:
        try:
            erp_pull.pull_products(self.hub)
            erp_pull.pull_warehouse_stock(self.hub)
        except Exception as exc:   # the ERP away: the next tick tries again; nothing to park
            log.warning("ERP pull failed: %s", exc)
