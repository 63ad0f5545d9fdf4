"""Reconciliation: what each channel's shop shows per (SKU, store) against what the hub would
publish now, drift repaired with an absolute update. Catches pushes lost or overwritten
outside the hub (an operator editing stock in the shop's back office).

A repair goes the way of a live publish (`channel_stock.publish_figure`: push outside any
transaction, then re-check under the lock on what the channel was told), so the two never
leave an older figure standing. Each repair counts in `hub_reconciliation_drift_total` and
`hub_reconciliation_repaired_total`.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.flows.channel_stock import UNKNOWN, publish_figure, told_row
from hub.metrics import METRICS
from hub.storage.tables import SkuRow, utcnow

log = logging.getLogger(__name__)


def reconcile_channel_stock(ctx: HubContext) -> list[dict[str, Any]]:
    """Check every (channel, SKU, store); returns the repairs: channel, sku, location_id, shown, expected."""
    with ctx.reader() as uow:
        skus = list(uow.session.execute(select(SkuRow.code).where(SkuRow.active.is_(True))
                                        .order_by(SkuRow.code)).scalars())
    repaired = []
    for channel in ctx.config.channels:
        if not channel.publish_to:
            continue
        shop = ctx.connectors.channel(channel.publish_to)
        for store in ctx.config.stores:
            for sku in skus:
                try:
                    repair = _check(ctx, shop, channel.id, channel.safety_stock, sku, store.id)
                except Exception as exc:   # one pair failing (unbound SKU, shop hiccup) stops no other
                    log.warning("reconcile %s %s@%s: %s", channel.id, sku, store.id, exc)
                    continue
                if repair:
                    repaired.append(repair)
    if repaired:
        log.warning("reconciliation repaired %d figure(s): %s", len(repaired),
                    ", ".join(f"{r['channel']} {r['sku']}@{r['location_id']} {r['shown']}->{r['expected']}"
                              for r in repaired))
    return repaired


def _check(ctx: HubContext, shop: Any, channel: str, safety: int, sku: str, store_id: str) -> dict[str, Any] | None:
    shown = shop.get_store_stock(sku, store_id)          # asked outside any transaction
    pushed = publish_figure(ctx, shop, channel, safety, sku, store_id, shown=shown)
    if pushed is None:
        with ctx.uow() as uow:                             # the shop is right: remember it as told
            row = told_row(uow, channel, sku, store_id)
            # ...unless told is UNKNOWN: a push may be in flight whose record emits no recheck (`publish_figures`)
            if row.available not in (shown, UNKNOWN):
                row.available, row.published_at = shown, utcnow()
                uow.commit()
        return None
    METRICS.reconciliation_drift.labels(channel).inc()       # found wrong...
    METRICS.reconciliation_repaired.labels(channel).inc()    # ...and repaired by the push just made
    return {"channel": channel, "sku": sku, "location_id": store_id, "shown": shown, "expected": pushed}
