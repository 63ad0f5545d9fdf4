"""A slow external system holds up nothing else: no transaction (so no SQLite writer lock, no
PostgreSQL row or table lock) is open while the hub waits on it."""
from __future__ import annotations

import threading
import time

from hub import handlers
from hub.consumers import handle_once
from hub.domain.model import StockDelta
from hub.services import erp_feed, inventory
from hub.storage.tables import utcnow
from tests.conftest import make_ctx

from .conftest import make_flow
from .test_erp_crm import completed_pickup

SLOW_S = 2.0


def _in_background(fn, *args) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, daemon=True)
    thread.start()
    time.sleep(SLOW_S / 4)                  # the call is under way
    return thread


def test_a_pos_sale_is_applied_while_a_slow_shop_call_is_in_flight(tmp_path, sandbox):
    """Embedded mode (SQLite): the old consumer held the process-wide writer lock for the whole shop call."""
    ctx = make_ctx("sqlite", tmp_path)
    flow = make_flow(ctx, sandbox)
    sandbox.wechat_shop.faults.latency_s = SLOW_S
    try:
        publishing = _in_background(handle_once, flow.ctx, handlers.STOCK_TO_SHOP,
                                    {"id": "slow-shop-1", "data": {"sku": "TEA-001", "location_id": "S001"}})
        with flow.ctx.uow() as uow:
            inventory.apply_delta(uow, StockDelta("pos", "R-SLOW-1", "CUP-002", "S002", -1, utcnow(), "sale"))
            uow.commit()
        still_calling = publishing.is_alive()
        publishing.join(10)
    finally:
        sandbox.wechat_shop.faults.latency_s = 0.0
        ctx.engine.dispose()
    assert still_calling, "the sale waited for the shop call to finish"
    assert sandbox.wechat_shop.stock_of("TEA-001", "S001") is not None


def test_the_erp_feed_is_read_while_a_slow_erp_push_is_in_flight(pg_flow):
    """PostgreSQL: the old push held its new erp_feed row while the ERP answered, and the feed reader's
    SHARE lock queued behind it."""
    order_id = completed_pickup(pg_flow)
    envelope = pg_flow.events("order.status_changed", order_id=order_id, to="completed")[0]
    pg_flow.sandbox.erp.faults.latency_s = SLOW_S
    try:
        pushing = _in_background(handle_once, pg_flow.ctx, handlers.ERP_SALES_ORDER, envelope)
        with pg_flow.ctx.uow() as uow:
            rows, _ = erp_feed.page(uow)
            listed = [entry.order_id for entry, _ in rows]
        still_calling = pushing.is_alive()
        pushing.join(10)
    finally:
        pg_flow.sandbox.erp.faults.latency_s = 0.0
    assert still_calling, "the feed read waited for the ERP push to finish"
    assert listed == [order_id]
    assert pg_flow.sandbox.erp.document_for(order_id) is not None
