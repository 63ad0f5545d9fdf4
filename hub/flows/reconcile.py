"""Reconciliation: what each channel's shop shows per (SKU, store) against what the hub would
publish now, drift repaired with an absolute update. Catches pushes lost or overwritten
outside the hub (an operator editing stock in the shop's back office).

Each pair is checked under the same lock `channel_stock.publish_stock` takes, so a repair and
a live publish never interleave.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.bootstrap import HubContext
from hub.flows.channel_stock import channel_available
from hub.services import inventory
from hub.storage.tables import ChannelStockPublished, SkuRow, utcnow
from hub.storage.upsert import insert_ignore

log = logging.getLogger(__name__)


def reconcile_channel_stock(ctx: HubContext) -> list[dict[str, Any]]:
    """Check every (channel, SKU, store); returns the repairs: channel, sku, location_id, shown, expected."""
    with ctx.uow() as uow:
        skus = list(uow.session.execute(select(SkuRow.code).where(SkuRow.active.is_(True))
                                        .order_by(SkuRow.code)).scalars())
    repaired = []
    for channel in ctx.config.channels:
        if not channel.publish_to:
            continue
        shop = ctx.connectors[channel.publish_to]
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
    with ctx.uow() as uow:
        insert_ignore(uow.session, ChannelStockPublished, {"channel": channel, "sku": sku, "location_id": store_id,
                                                           "available": -1, "published_at": utcnow()})
        published = uow.session.execute(
            select(ChannelStockPublished).where(ChannelStockPublished.channel == channel,
                                                ChannelStockPublished.sku == sku,
                                                ChannelStockPublished.location_id == store_id)
            .with_for_update().execution_options(populate_existing=True)).scalar_one()
        expected = channel_available(inventory.stock_at(uow.session, ctx.config, sku, store_id).available, safety)
        shown = shop.get_store_stock(sku, store_id)
        if shown == expected:
            if published.available != expected:
                published.available = expected     # the shop is right; remember it as told
                uow.commit()
            return None
        shop.update_store_stock(sku, store_id, expected)
        published.available, published.published_at = expected, utcnow()
        uow.commit()
    return {"channel": channel, "sku": sku, "location_id": store_id, "shown": shown, "expected": expected}
