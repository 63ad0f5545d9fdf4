"""Pulls from the ERP: the product master, and on-hand per warehouse (the ERP is the source of
truth for warehouses; stores' on-hand comes from their POS). Run by ErpSyncService's timer
and by `hub resync`. Each step is idempotent, so pulling twice changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from hub.bootstrap import HubContext, upsert_skus
from hub.domain.errors import BadInput
from hub.domain.limits import fits_int
from hub.ports import Erp
from hub.services import inventory
from hub.storage.tables import SkuRow

log = logging.getLogger(__name__)


def pull_products(ctx: HubContext) -> int:
    """Upsert the ERP's product master; how many SKUs were added or changed. An ERP without a
    product list (an order-only service) is skipped, and says so."""
    erp = ctx.connectors.erp()
    if not _does(erp, "product_master"):
        log.info("ERP %s has no product list (no calls.product_master): product pull skipped", erp.name)
        return 0
    skus = erp.fetch_products()
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
    erp = ctx.connectors.erp()
    if not _does(erp, "warehouse_stock"):
        log.info("ERP %s has no stock service (no calls.warehouse_stock): stock pull skipped", erp.name)
        return 0
    if _does(erp, "product_master"):
        lines = list(erp.fetch_warehouse_stock(warehouses))
    else:                             # no product list: ask for the hub's own SKUs
        with ctx.reader() as uow:
            codes = list(uow.session.execute(select(SkuRow.code).where(SkuRow.active).order_by(SkuRow.code))
                         .scalars())
        lines = list(erp.fetch_warehouse_stock(warehouses, sku_codes=codes))
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


def _does(erp: Erp, job: str) -> bool:
    """Whether the ERP's mapping names this job; a connector that cannot say does them all."""
    does = getattr(erp, "does", None)
    return True if does is None else bool(does(job))
