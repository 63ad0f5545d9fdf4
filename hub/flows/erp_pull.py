"""Pulls from the ERP: the product master, and on-hand per warehouse (the ERP is the source of
truth for warehouses; stores' on-hand comes from their POS). Run by ErpSyncService's timer
and by `hub resync`. Each step is idempotent, so pulling twice changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from hub.bootstrap import HubContext, upsert_skus
from hub.domain.errors import BadInput
from hub.domain.limits import fits_int
from hub.services import inventory

log = logging.getLogger(__name__)


def pull_products(ctx: HubContext) -> int:
    """Upsert the ERP's product master; how many SKUs were added or changed."""
    skus = ctx.connectors.erp().fetch_products()
    with ctx.uow() as uow:
        changed = upsert_skus(uow, skus)
        uow.commit()
    log.info("ERP product master: %d SKU(s), %d added or changed", len(skus), changed)
    return changed


def pull_warehouse_stock(ctx: HubContext, progress: Callable[[int, int], None] | None = None) -> int:
    """Apply the ERP's on-hand per warehouse as counts; how many changed the ledger.
    `progress(done, total)` is told after each line (the CLI draws a bar with it).

    A count the ledger already holds (same ERP posting time) is a duplicate, an older one is
    stale: neither counts. Each count is its own transaction, so one bad line stops nothing else.
    """
    warehouses = [loc.id for loc in ctx.config.locations if loc.kind == "warehouse"]
    if not warehouses:
        return 0
    applied = 0
    lines = list(ctx.connectors.erp().fetch_warehouse_stock(warehouses))
    for done, count in enumerate(lines, 1):
        if progress is not None:
            progress(done, len(lines))
        if count.location_id not in warehouses:
            continue                  # a store's on-hand is its POS's business, never the ERP's
        if not fits_int(count.on_hand):   # an INTEGER column: a DataError here would stop every later pull
            log.warning("ERP stock line %s@%s skipped: on-hand %d is out of range", count.sku, count.location_id,
                        count.on_hand)
            continue
        try:
            with ctx.uow() as uow:
                result = inventory.apply_count(uow, count)
                uow.commit()
        except BadInput as exc:       # e.g. a SKU the product master has not brought yet
            log.warning("ERP stock line %s@%s skipped: %s", count.sku, count.location_id, exc)
            continue
        applied += result.applied
    log.info("ERP warehouse stock: %d count(s) applied", applied)
    return applied
