"""Completed orders to the ERP and the CRM; the ERP's product master and warehouse stock in;
channel stock reconciled."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from connectors.base import RetryPolicy
from hub import consumers, handlers
from hub.consumers import handle_once
from hub.flows import erp_pull
from hub.flows.reconcile import reconcile_channel_stock
from hub.services import orders
from hub.services import tracking as fulfilment
from hub.storage.tables import DeadLetter, ErpFeedEntry, SkuRow, StockLevel
from sandbox.erp_soap import ErpItem
from sandbox.wechat_shop import STORE_WAREHOUSES, shop_ids
from tests.support import T0


def completed_pickup(flow, key: str = "done") -> str:
    order_id = flow.place("pickup", [("TEA-001", 2, 12800), ("CUP-002", 1, 4500)], store_id="S001", key=key)
    flow.pay(order_id)
    flow.move(order_id, "picking", "picked", "ready_for_pickup", "collected")
    with flow.ctx.uow() as uow:
        fulfilment.complete(uow, orders.get(uow, order_id, lock=True), "test", "handed over")
        uow.commit()
    return order_id


def feed_entry(flow, order_id: str) -> ErpFeedEntry:
    with flow.ctx.uow() as uow:
        entry = uow.session.execute(select(ErpFeedEntry).where(ErpFeedEntry.order_id == order_id)).scalar_one()
        uow.session.expunge(entry)
        return entry


def test_completed_order_gets_its_erp_document_and_crm_points_once(flow):
    order_id = completed_pickup(flow)
    for _ in range(2):                       # the event delivered twice
        flow.deliver(handlers.ERP_SALES_ORDER, "order.status_changed", order_id=order_id, to="completed")
        flow.deliver(handlers.CRM_POINTS, "order.status_changed", order_id=order_id, to="completed")
    # and re-sent under a new message id: the ERP and the CRM dedupe on the order id
    envelope = flow.events("order.status_changed", order_id=order_id, to="completed")[0]
    for name in (handlers.ERP_SALES_ORDER, handlers.CRM_POINTS):
        assert handle_once(flow.ctx, name, {**envelope, "id": "resent"}).status == "applied"

    erp, crm = flow.sandbox.erp, flow.sandbox.crm
    assert feed_entry(flow, order_id).erp_document_no == erp.document_for(order_id) is not None
    assert len(erp.calls_to("CreateSalesOrder")) == 1       # the resent one found the number already held
    [sent] = [o for o in erp.received_orders if o["ExternalRef"] == order_id]
    assert sent["Plant"] == "1101"
    member = crm.member_by_ref("oBuyer001")
    assert member.points == (2 * 12800 + 4500) // 100
    assert len([p for p in crm.point_entries if order_id in str(p)]) == 1


def test_erp_down_parks_the_sales_order_crm_unaffected_replay_after_recovery(flow):
    order_id = completed_pickup(flow)
    erp = flow.sandbox.erp
    flow.ctx.connectors["erp"].retry = RetryPolicy(attempts=2, initial=0.01, jitter=0)
    erp.faults.http_error_next = 1000                         # the ERP's front answers 503 to everything
    envelope = flow.events("order.status_changed", order_id=order_id, to="completed")[0]

    parked = handle_once(flow.ctx, handlers.ERP_SALES_ORDER, envelope, sleep=lambda s: None)
    points = handle_once(flow.ctx, handlers.CRM_POINTS, envelope, sleep=lambda s: None)

    assert parked.status == "parked" and "503" in parked.error and points.status == "applied"
    [letter] = consumers.dead_letters(flow.ctx)
    assert letter.target == handlers.ERP_SALES_ORDER.name and letter.payload["id"] == envelope["id"]
    assert feed_entry(flow, order_id).erp_document_no is None      # still in the pull feed meanwhile
    assert flow.sandbox.crm.member_by_ref("oBuyer001").points == 301

    assert not consumers.replay(flow.ctx, letter.id, handlers.BY_NAME)           # still down: kept
    erp.faults.http_error_next = 0
    assert consumers.replay(flow.ctx, letter.id, handlers.BY_NAME)
    assert feed_entry(flow, order_id).erp_document_no == erp.document_for(order_id) is not None
    with flow.ctx.uow() as uow:
        assert uow.session.get(DeadLetter, letter.id) is None


def test_resync_pulls_products_and_warehouse_stock_once(flow):
    erp = flow.sandbox.erp
    erp.catalogue.append(ErpItem("MUG-005", "6901234567005", "Enamel mug", "EA", Decimal("39.90")))
    try:   # posted after the counts the hub holds, and not in the future (an ERP time ahead is skipped)
        erp.set_stock("1000", "TEA-001", 42, as_of=T0 + timedelta(hours=1))
        erp.set_stock("1000", "MUG-005", 7, as_of=T0 + timedelta(hours=1))
        assert erp_pull.pull_products(flow.ctx) == 1
        applied = erp_pull.pull_warehouse_stock(flow.ctx)
        assert (erp_pull.pull_products(flow.ctx), erp_pull.pull_warehouse_stock(flow.ctx)) == (0, 0)
    finally:
        erp.catalogue.pop()
    assert applied == 2              # the other lines are older than the counts the hub holds
    with flow.ctx.uow() as uow:
        assert uow.session.get(SkuRow, "MUG-005").price_fen == 3990
        assert uow.session.get(StockLevel, ("TEA-001", "WH01")).on_hand == 42
        assert uow.session.get(StockLevel, ("MUG-005", "WH01")).on_hand == 7
        assert uow.session.get(StockLevel, ("TEA-001", "S001")).on_hand == 10   # the ERP's store plants: ignored


def test_reconciliation_repairs_drift_made_in_the_shop_and_reports_it(flow):
    shop = flow.sandbox.wechat_shop
    first = reconcile_channel_stock(flow.ctx)       # the shop starts empty: S001 and S002's stock is set

    def found(channel: str) -> set[tuple[str, int, int]]:
        return {(r["location_id"], r["shown"], r["expected"]) for r in first if r["channel"] == channel}

    # 10 on hand, the stores' safety stock 0: the WeChat shop is shown all of it less its safety stock of 1
    # (the mini-program's own checkout reads the API);
    # Meituan its allocation (config.yaml: 80 % of on-hand less the store's safety, 8) less its own 1
    assert found("wechat_shop") == {("S001", 0, 9), ("S002", 0, 9)}
    assert found("meituan") == {("S001", 0, 7), ("S002", 0, 7)}
    # each configured channel is set: 4 SKUs x 2 stores each, but POT-003, not listed on Meituan (its 0 is right)
    assert len([r for r in first if r["channel"] == "wechat_shop"]) == 4 * 2
    assert sorted({r["sku"] for r in first if r["channel"] == "meituan"}) == ["CUP-002", "SET-004", "TEA-001"]
    assert len([r for r in first if r["channel"] == "meituan"]) == 3 * 2
    assert reconcile_channel_stock(flow.ctx) == []                        # S003 holds none: 0 is right
    assert shop.stock_of("TEA-001", "S001") == 9              # 10 on hand, channel safety stock 1
    product_id, sku_id = shop_ids("TEA-001")
    shop.stock[(product_id, sku_id, STORE_WAREHOUSES["S001"])] = 3     # someone edits the shop's back office

    repaired = reconcile_channel_stock(flow.ctx)

    assert repaired == [{"channel": "wechat_shop", "sku": "TEA-001", "location_id": "S001", "shown": 3,
                         "expected": 9}]
    assert shop.stock_of("TEA-001", "S001") == 9 and reconcile_channel_stock(flow.ctx) == []


def test_hub_resync_command_runs_both_pulls_and_prints_what_changed(flow, monkeypatch, capsys):
    from tests.support import config_env
    from workers.cli import main

    for name, value in {**config_env(), **flow.sandbox.env(),
                        "HUB_DATABASE_URL": flow.ctx.config.hub.database_url}.items():
        monkeypatch.setenv(name, value)
    erp = flow.sandbox.erp
    erp.catalogue.append(ErpItem("MUG-006", "6901234567006", "Travel mug", "EA", Decimal("59.00")))
    erp.set_stock("1000", "MUG-006", 12, as_of=T0 + timedelta(hours=2))
    try:
        assert main(["resync"]) == 0
    finally:
        erp.catalogue.pop()
    out = capsys.readouterr().out
    assert "1 SKU(s) added or changed" in out and "1 count(s) applied" in out and "resync done in" in out
    # off a terminal the bar is not drawn, and the summary counted the lines on it: "0 ... line(s) read"
    from hub.flows.erp_pull import pull_warehouse_stock

    seen: list[int] = []
    pull_warehouse_stock(flow.ctx, progress=lambda done, total: seen.append(total))
    assert f"{seen[-1]} warehouse stock line(s) read" in out and seen[-1] > 0
    with flow.ctx.uow() as uow:
        assert uow.session.get(StockLevel, ("MUG-006", "WH01")).on_hand == 12


def test_warehouse_pull_reports_progress_line_by_line(flow):
    from hub.flows.erp_pull import pull_warehouse_stock

    seen: list[tuple[int, int]] = []
    pull_warehouse_stock(flow.ctx, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == list(range(1, len(seen) + 1))


def test_a_warehouse_line_beyond_an_integer_is_skipped_and_the_others_still_apply(flow, caplog):
    """Issue 19 item 5: an on-hand of 3e9 does not fit the ledger's INTEGER columns. It was a DataError that
    stopped the pull at that line, every time; now it is skipped and logged like a line of an unknown SKU."""
    erp = flow.sandbox.erp
    erp.set_stock("1000", "TEA-001", 3_000_000_000, as_of=T0 + timedelta(hours=1))
    erp.set_stock("1000", "CUP-002", 33, as_of=T0 + timedelta(hours=1))
    assert erp_pull.pull_warehouse_stock(flow.ctx) == 1
    with flow.ctx.uow() as uow:
        assert uow.session.get(StockLevel, ("CUP-002", "WH01")).on_hand == 33
        assert uow.session.get(StockLevel, ("TEA-001", "WH01")).on_hand != 3_000_000_000
    assert "skipped" in caplog.text and "3000000000" in caplog.text
