"""Channel sync's batch handler (`publish_stock_many` -> `publish_figures`): a burst of stock events, on
SQLite and PostgreSQL, ends with the shop showing each (SKU, store) figure, pushed once per pair however
many events named it; a figure the shop already shows is not pushed again; warehouses are not pushed."""
from __future__ import annotations

import threading

from hub import handlers
from hub.consumers import handle_batch, handle_once
from hub.domain.model import StockDelta
from hub.flows import channel_stock  # noqa: F401  (registers the consumer and its batch handler)
from hub.services import inventory
from hub.storage.tables import utcnow

from .conftest import SKUS


def sell(flow, sku: str, store: str, qty: int, ref: str) -> None:
    with flow.ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta(f"pos:{store}", ref, sku, store, -qty, utcnow(), "sale"))
        uow.commit()


def test_a_burst_is_pushed_once_per_pair_with_the_figure_now(flow):
    shop = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    a, b = SKUS[0], SKUS[1]
    for i in range(3):                                        # three sales of a at S001: three events
        sell(flow, a, "S001", 1, f"r-a-{i}")
    sell(flow, b, "S002", 2, "r-b")
    with flow.ctx.uow() as uow:                               # a warehouse move: not the shop's business
        inventory.apply_delta(uow, StockDelta("erp", "gr-1", a, "WH01", 5, utcnow(), "receipt"))
        uow.commit()
    shop.stock_updates.clear()
    envelopes = flow.events("stock.changed")
    assert len(envelopes) >= 5
    outcomes = handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, envelopes)
    assert {o.status for o in outcomes} == {"applied"}
    assert shop.stock_of(a, "S001") == 10 - 3 - safety and shop.stock_of(b, "S002") == 10 - 2 - safety
    pushed = [(u["product_id"], u["sku_id"], u["out_warehouse_id"]) for u in shop.stock_updates]
    stores = {(e["data"]["sku"], e["data"]["location_id"]) for e in envelopes if e["data"]["location_id"] != "WH01"}
    assert len(pushed) == len(set(pushed)) == len(stores)     # once per (SKU, store); WH01 not at all

    # the same figures again (a replayed burst under new ids): nothing to push
    shop.stock_updates.clear()
    again = [{**e, "id": e["id"][:-4] + "ffff"} for e in envelopes]
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, again)
    assert shop.stock_updates == []

    sell(flow, a, "S001", 1, "r-a-9")                         # and a new sale is pushed with its figure
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:] * 2)
    assert shop.stock_of(a, "S001") == 10 - 4 - safety



class _SaleDuringPush:
    """The real shop connector, with a till sale landing while the first figure is being pushed."""

    def __init__(self, flow, shop, sku: str, store: str):
        self.flow, self.shop, self.sku, self.store, self.sold = flow, shop, sku, store, False

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        if not self.sold and (sku, store_id) == (self.sku, self.store):
            self.sold = True
            sell(self.flow, sku, store_id, 2, "r-during-push")
        self.shop.update_store_stock(sku, store_id, available)


def test_a_figure_that_moves_under_its_push_is_pushed_again_by_a_later_batch(flow):
    """One round per batch: the pair that moved while it was pushed gets a `recheck` stock event (the
    last push to land is still followed by a check against the ledger), and that event's batch pushes the
    newer figure; the pair that did not move is not pushed again."""
    shop = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    a, b = SKUS[0], SKUS[1]
    sell(flow, a, "S001", 1, "r-a")
    sell(flow, b, "S001", 1, "r-b")
    envelopes = [e for e in flow.events("stock.changed")
                 if (e["data"]["sku"], e["data"]["location_id"]) in ((a, "S001"), (b, "S001"))]
    shop.stock_updates.clear()
    connector = flow.ctx.connectors.channel("wechat_shop")
    pushed = channel_stock.publish_figures(flow.ctx, _SaleDuringPush(flow, connector, a, "S001"), "wechat_shop",
                                           safety, [(a, "S001"), (b, "S001")])
    assert pushed == {(a, "S001"): 10 - 1 - safety, (b, "S001"): 10 - 1 - safety}
    assert shop.stock_of(a, "S001") == 10 - 1 - safety                       # stale: the sale came after
    rechecks = [e for e in flow.events("stock.changed") if e["data"]["cause"] == channel_stock.RECHECK]
    assert [(e["data"]["sku"], e["data"]["location_id"]) for e in rechecks] == [(a, "S001")]
    assert len(shop.stock_updates) == 2                                       # one round: each pair once
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, rechecks + envelopes)
    assert shop.stock_of(a, "S001") == 10 - 3 - safety and shop.stock_of(b, "S001") == 10 - 1 - safety
    assert len(shop.stock_updates) == 3                                       # only the moved pair again


class _HoldAfterLanding:
    """The real shop connector, holding its caller between the push landing and its record."""

    def __init__(self, shop, landed: threading.Event, until: threading.Event):
        self.shop, self.landed, self.until = shop, landed, until

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        self.shop.update_store_stock(sku, store_id, available)
        self.landed.set()
        assert self.until.wait(20), "batch A never recorded"


def test_an_older_push_landing_last_is_pushed_over_by_the_recheck(flow):
    """Issue 19: batch A reads 5, a till sale makes it 4, batch B reads and pushes 4, A's slower push of 5
    lands last; A records first, then B. The shop must end with the hub's 4 once the rechecks are handled
    (the old code recorded 4 as told, and the recheck found nothing to push: shop 5, hub 4)."""
    sim = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    pair = (SKUS[0], "S001")
    connector = flow.ctx.connectors.channel("wechat_shop")
    sell(flow, *pair, 1, "r-before")
    five = 10 - 1 - safety
    a_held, b_landed, a_recorded = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def hold_a(body: dict) -> None:               # the shop receives A's push first, applies it after B's
        seen.append(body["num"])
        if len(seen) == 1:
            a_held.set()
            assert b_landed.wait(20), "B's push never landed"

    sim.before_stock_update = hold_a
    results: dict[str, object] = {}

    def batch(name: str, shop) -> None:
        try:
            results[name] = channel_stock.publish_figures(flow.ctx, shop, "wechat_shop", safety, [pair])
        except BaseException as exc:           # noqa: BLE001 — asserted below
            results[name] = exc
        if name == "A":
            a_recorded.set()

    a = threading.Thread(target=batch, args=("A", connector))
    a.start()
    assert a_held.wait(20)
    sell(flow, *pair, 1, "r-during")                                # the till sale: 5 -> 4
    b = threading.Thread(target=batch, args=("B", _HoldAfterLanding(connector, b_landed, a_recorded)))
    b.start()
    a.join(30)
    b.join(30)
    assert results == {"A": {pair: five}, "B": {pair: five - 1}}
    assert seen == [five, five - 1] and sim.stock_of(*pair) == five   # A's older figure landed last
    sim.before_stock_update = None

    for _ in range(3):                                              # the rechecks, as the consumer takes them
        rechecks = [e for e in flow.events("stock.changed") if e["data"]["cause"] == channel_stock.RECHECK]
        handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, rechecks)
    assert sim.stock_of(*pair) == five - 1                          # the hub's figure, without reconciliation
    with flow.ctx.reader() as uow:
        assert channel_stock._told(uow, "wechat_shop", [pair]) == {pair: five - 1}


def test_the_single_pair_push_is_numbered_too_so_an_older_one_landing_last_is_pushed_over(flow):
    """The same interleaving through `publish_figure` (the non-batch consumer and reconciliation): it used
    to record whatever it pushed as told, unnumbered, so the last to record — not the last to land — was
    claimed as what the shop shows (here B's 4 while A's 5 stood; A only happened to push again in a round of
    its own). Now the overlap is seen: told is unknown, and the recheck pushes the hub's figure."""
    sim = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    pair = (SKUS[0], "S001")
    connector = flow.ctx.connectors.channel("wechat_shop")
    sell(flow, *pair, 1, "r-before")
    five = 10 - 1 - safety
    a_held, b_landed, a_recorded = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def hold_a(body: dict) -> None:
        seen.append(body["num"])
        if len(seen) == 1:
            a_held.set()
            assert b_landed.wait(20), "B's push never landed"

    sim.before_stock_update = hold_a
    results: dict[str, object] = {}

    def single(name: str, shop) -> None:
        try:
            results[name] = channel_stock.publish_figure(flow.ctx, shop, "wechat_shop", safety, *pair)
        except BaseException as exc:           # noqa: BLE001 — asserted below
            results[name] = exc
        if name == "A":
            a_recorded.set()

    a = threading.Thread(target=single, args=("A", connector))
    a.start()
    assert a_held.wait(20)
    sell(flow, *pair, 1, "r-during")
    b = threading.Thread(target=single, args=("B", _HoldAfterLanding(connector, b_landed, a_recorded)))
    b.start()
    a.join(30)
    b.join(30)
    assert results == {"A": five, "B": five - 1}                     # one push each, no rounds
    assert seen == [five, five - 1] and sim.stock_of(*pair) == five  # A's older figure landed last
    with flow.ctx.reader() as uow:                                  # and is not claimed as told
        assert channel_stock._told(uow, "wechat_shop", [pair]) == {pair: channel_stock.UNKNOWN}
    sim.before_stock_update = None

    for _ in range(3):                          # the rechecks, as the non-batch consumer takes them
        for recheck in [e for e in flow.events("stock.changed") if e["data"]["cause"] == channel_stock.RECHECK]:
            handle_once(flow.ctx, handlers.STOCK_TO_SHOP, recheck)
    assert sim.stock_of(*pair) == five - 1
    with flow.ctx.reader() as uow:
        assert channel_stock._told(uow, "wechat_shop", [pair]) == {pair: five - 1}


def test_a_pair_pushed_before_is_numbered_without_inserting_its_row_again(flow):
    """The told row of a (channel, SKU, store) exists after its first push: later batches lock it without
    first inserting it again (ignored), and a new pair's row is still created."""
    from tests.support import statements_run

    a, b = SKUS[0], SKUS[1]
    sell(flow, a, "S001", 1, "r-first")
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])
    sell(flow, a, "S001", 1, "r-second")
    with statements_run(flow.ctx.engine) as statements:
        handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])
    assert _told_inserts(statements) == [] and any("channel_stock_published" in s for s in statements)
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    assert flow.sandbox.wechat_shop.stock_of(a, "S001") == 10 - 2 - safety

    sell(flow, b, "S002", 1, "r-new-pair")                   # never pushed: its row is made on the way
    with statements_run(flow.ctx.engine) as statements:
        handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])
    assert _told_inserts(statements)
    assert flow.sandbox.wechat_shop.stock_of(b, "S002") == 10 - 1 - safety


def _told_inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("insert") and "channel_stock_published" in s.split("(")[0]]
