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


def test_a_figure_that_moves_under_its_push_is_pushed_by_the_sales_own_event_without_a_recheck(flow):
    """One round per batch: the pair that moved while it was pushed is pushed again when the sale's own stock
    event is taken — it finds told at the figure pushed, not the ledger's. No `recheck` event is needed for it
    (they used to be half of all stock events under a busy store); the pair that did not move is not pushed
    again."""
    shop = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    a, b = SKUS[0], SKUS[1]
    sell(flow, a, "S001", 1, "r-a")
    sell(flow, b, "S001", 1, "r-b")
    shop.stock_updates.clear()
    connector = flow.ctx.connectors.channel("wechat_shop")
    pushed = channel_stock.publish_figures(flow.ctx, _SaleDuringPush(flow, connector, a, "S001"), "wechat_shop",
                                           safety, [(a, "S001"), (b, "S001")])
    assert pushed == {(a, "S001"): 10 - 1 - safety, (b, "S001"): 10 - 1 - safety}
    assert shop.stock_of(a, "S001") == 10 - 1 - safety                       # stale: the sale came after
    assert _rechecks(flow) == []
    assert len(shop.stock_updates) == 2                                       # one round: each pair once
    sale = flow.events("stock.changed", sku=a, location_id="S001")[-1]        # the sale under the push
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, [sale])
    assert shop.stock_of(a, "S001") == 10 - 3 - safety and shop.stock_of(b, "S001") == 10 - 1 - safety
    assert len(shop.stock_updates) == 3                                       # only the moved pair again


def test_a_batch_taking_an_event_while_a_push_is_in_flight_pushes_rather_than_skips(flow):
    """While a push is in flight its pair's told reads UNKNOWN. Here told is 9, a sale makes it 8 and A's push
    of 8 is held at the shop; a return makes it 9 again and batch B takes the return's event: told 9 equals
    B's 9, but A's 8 will land. B must push (with A's push in flight, skipping would leave the shop at 8 once
    A lands — no recheck covers it), and the overlap's recheck ends the shop at the hub's 9."""
    sim, connector, safety, pair, nine = _shop_told_nine(flow)
    assert sim.stock_of(*pair) == nine
    sell(flow, *pair, 1, "r-second")                                  # 9 -> 8
    a_held, release, seen = _hold_first_push(sim, lambda body: body["num"])
    results: dict[str, object] = {}

    def batch_a() -> None:
        try:
            results["A"] = channel_stock.publish_figures(flow.ctx, connector, "wechat_shop", safety, [pair])
        except BaseException as exc:           # noqa: BLE001 — asserted below
            results["A"] = exc

    a = threading.Thread(target=batch_a)
    a.start()
    assert a_held.wait(20)
    give_back(flow, *pair, 1, "r-return")                              # 8 -> 9, while A's 8 is in flight
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])   # batch B
    release.set()
    a.join(30)
    assert results == {"A": {pair: nine - 1}} and seen == [nine - 1, nine]
    assert sim.stock_of(*pair) == nine - 1                             # A's older figure landed last
    sim.before_stock_update = None
    for _ in range(3):
        handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, _rechecks(flow))
    assert sim.stock_of(*pair) == nine


def test_the_figure_pushed_is_read_after_the_push_is_numbered(flow):
    """A batch reads 8 where the channel was told 9; before it numbers its push a return makes it 9 again,
    and the return's own batch skips (told 9 is the figure, no push in flight). The first batch must push
    9 — what the ledger holds once its push is numbered — not the 8 it read (which no event would correct:
    the old code pushed 8 and left it to a recheck event)."""
    sim, connector, safety, pair, nine = _shop_told_nine(flow)
    sell(flow, *pair, 1, "r-second")                                  # 9 -> 8
    with flow.ctx.reader() as uow:                                     # the batch's first read: 8, told 9
        held, told = channel_stock.held_now(uow, [pair]), channel_stock._told(uow, "wechat_shop", [pair])
    assert told == {pair: nine}
    give_back(flow, *pair, 1, "r-return")                              # 8 -> 9
    sim.stock_updates.clear()
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])
    assert sim.stock_updates == []                                      # the return's batch: nothing to push
    pushed = channel_stock.publish_figures(flow.ctx, connector, "wechat_shop", safety, [pair], held=held, told=told)
    assert pushed == {pair: nine} and sim.stock_of(*pair) == nine and _rechecks(flow) == []


def test_two_batches_of_one_process_take_turns_on_a_pair(flow):
    """Batch A's push of a pair is at the shop when batch B gets a newer event for it: B waits for A, then
    pushes the newer figure itself — no overlapped pushes, so no recheck event; B's other pair does not wait."""
    sim = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    pair, other = (SKUS[0], "S001"), (SKUS[1], "S002")
    sell(flow, *pair, 1, "r-a")
    a_held, release, seen = _hold_first_push(sim, lambda body: (body["sku_id"], body["num"]))
    a = threading.Thread(target=handle_batch, args=(flow.ctx, handlers.STOCK_TO_SHOP,
                                                    flow.events("stock.changed")[-1:]))
    a.start()
    assert a_held.wait(20)
    sell(flow, *pair, 1, "r-b")
    sell(flow, *other, 1, "r-other")
    b = threading.Thread(target=handle_batch, args=(flow.ctx, handlers.STOCK_TO_SHOP,
                                                    flow.events("stock.changed")[-2:]))
    b.start()
    for _ in range(200):                                               # B pushes its free pair meanwhile
        if len(seen) == 2:
            break
        threading.Event().wait(0.05)
    assert [num for _, num in seen] == [10 - 1 - safety, 10 - 1 - safety]   # A's pair, then B's other pair
    release.set()
    a.join(30)
    b.join(30)
    sim.before_stock_update = None
    assert [num for _, num in seen] == [10 - 1 - safety, 10 - 1 - safety, 10 - 2 - safety]
    assert sim.stock_of(*pair) == 10 - 2 - safety and sim.stock_of(*other) == 10 - 1 - safety
    assert _rechecks(flow) == []


def _shop_told_nine(flow):
    """(the shop simulator, its connector, its safety stock, the pair, nine): one sale at S001 of 10 counted,
    its figure — called nine, whatever the safety stock — pushed and told."""
    sim = flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("wechat_shop").safety_stock
    pair = (SKUS[0], "S001")
    sell(flow, *pair, 1, "r-first")
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[-1:])
    return sim, flow.ctx.connectors.channel("wechat_shop"), safety, pair, 10 - 1 - safety


def _hold_first_push(sim, note) -> tuple[threading.Event, threading.Event, list]:
    """Hold the shop's first stock update (before it is applied) until `release` is set; `seen` gets
    `note(body)` of every update, in the order they reach the shop."""
    held, release, seen = threading.Event(), threading.Event(), []

    def hold(body: dict) -> None:
        seen.append(note(body))
        if len(seen) == 1:
            held.set()
            assert release.wait(20), "the first push was never released"

    sim.before_stock_update = hold
    return held, release, seen


def _rechecks(flow) -> list[dict]:
    return [e for e in flow.events("stock.changed") if e["data"]["cause"] == channel_stock.RECHECK]


def give_back(flow, sku: str, store: str, qty: int, ref: str) -> None:
    with flow.ctx.uow() as uow:
        inventory.apply_delta(uow, StockDelta(f"pos:{store}", ref, sku, store, qty, utcnow(), "return"))
        uow.commit()


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


def test_a_channel_taking_many_skus_per_call_gets_one_call_per_store(flow):
    """Meituan's retail/sku/stock takes a store's figures together (`StoreStockBatches`): a batch of three pairs at
    S001 and one at S002 is two calls there (WeChat's stock API takes one SKU: four calls), and more figures than
    one call takes are split (here two per call)."""
    mt, shop = flow.sandbox.meituan, flow.sandbox.wechat_shop
    safety = flow.ctx.config.channel("meituan").safety_stock
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed"))      # the seeded figures
    pairs = [(SKUS[0], "S001"), (SKUS[1], "S001"), (SKUS[3], "S001"), (SKUS[0], "S002")]
    seen = len(flow.events("stock.changed"))
    for i, (sku, store) in enumerate(pairs):
        sell(flow, sku, store, 1, f"r-many-{i}")
    mt.stock_calls.clear()
    shop.stock_updates.clear()
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[seen:])
    assert sorted((c["app_poi_code"], len(c["food_data"])) for c in mt.stock_calls) == [
        (mt.poi_codes["S001"], 3), (mt.poi_codes["S002"], 1)]
    assert len(shop.stock_updates) == 4
    expected = channel_stock.figures_now(None, flow.ctx, safety, pairs, "meituan")
    assert {p: mt.stock_of(*p) for p in pairs} == expected

    connector = flow.ctx.connectors.channel("meituan")
    connector.stocks_per_call = 2                             # this instance only: the split, without 201 SKUs
    three = pairs[:3]
    for i, (sku, store) in enumerate(three):
        sell(flow, sku, store, 3, f"r-split-{i}")
    mt.stock_calls.clear()
    channel_stock.publish_figures(flow.ctx, connector, "meituan", safety, three)
    assert sorted(len(c["food_data"]) for c in mt.stock_calls) == [1, 2]
    expected = channel_stock.figures_now(None, flow.ctx, safety, three, "meituan")
    assert {p: mt.stock_of(*p) for p in three} == expected


class _RefusingStore:
    """The real Meituan connector, its calls for one store refused (a store the platform closed)."""

    def __init__(self, connector, store: str):
        self.connector, self.store, self.stocks_per_call = connector, store, connector.stocks_per_call

    def update_store_stocks(self, store_id: str, figures) -> None:
        if store_id == self.store:
            raise RuntimeError(f"refused at {store_id}")
        self.connector.update_store_stocks(store_id, figures)

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        self.update_store_stocks(store_id, [(sku, available)])


def test_a_refused_store_call_leaves_each_of_its_pairs_unknown_and_the_others_told(flow):
    """One store's call failing fails every pair it carried (they may have landed: told UNKNOWN, pushed again by
    the retry); the other store's call landed and is recorded as told."""
    import pytest

    mt = flow.sandbox.meituan
    safety = flow.ctx.config.channel("meituan").safety_stock
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed"))      # the seeded figures
    pairs = [(SKUS[0], "S001"), (SKUS[1], "S001"), (SKUS[0], "S002")]
    for i, (sku, store) in enumerate(pairs):
        sell(flow, sku, store, 1, f"r-refused-{i}")
    shop = _RefusingStore(flow.ctx.connectors.channel("meituan"), "S001")
    with pytest.raises(RuntimeError, match="refused at S001"):
        channel_stock.publish_figures(flow.ctx, shop, "meituan", safety, pairs)
    figure = channel_stock.figures_now(None, flow.ctx, safety, [pairs[2]], "meituan")[pairs[2]]
    with flow.ctx.reader() as uow:
        told = channel_stock._told(uow, "meituan", pairs)
    assert told == {pairs[0]: channel_stock.UNKNOWN, pairs[1]: channel_stock.UNKNOWN, pairs[2]: figure}
    assert mt.stock_of(*pairs[2]) == figure


def test_a_batch_numbers_and_records_every_channels_pushes_together(flow):
    """Issue 26: the shop and Meituan each had their own numbering, figures and record transactions per batch (three
    each, one channel after the other): now one of each for every channel, and both channels' calls are made
    together. Each channel still ends with its own figure (its own safety stock) and its own told rows."""
    from tests.support import statements_run

    shop, mt = flow.sandbox.wechat_shop, flow.sandbox.meituan
    handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed"))      # the seeded figures
    pairs = [(SKUS[0], "S001"), (SKUS[1], "S002")]
    seen = len(flow.events("stock.changed"))
    for i, (sku, store) in enumerate(pairs):
        sell(flow, sku, store, 2, f"r-both-{i}")
    with statements_run(flow.ctx.engine) as statements:
        handle_batch(flow.ctx, handlers.STOCK_TO_SHOP, flow.events("stock.changed")[seen:])
    told = [s for s in statements if "channel_stock_published" in s.split(" where ")[0]]
    numbering = [s for s in told if s.startswith("update") and "push_seq=(" in s]
    locking = [s for s in told if s.startswith("select") and "push_seq" in s]
    recording = [s for s in told if s.startswith("update") and "published_at=" in s]
    reading = [s for s in told if s.startswith("select") and "push_seq" not in s]
    assert len(numbering) == len(locking) == len(recording) == len(reading) == 1
    for channel, shows in (("wechat_shop", shop.stock_of), ("meituan", mt.stock_of)):
        safety = flow.ctx.config.channel(channel).safety_stock
        expected = channel_stock.figures_now(None, flow.ctx, safety, pairs, channel)
        assert {p: shows(*p) for p in pairs} == expected
        with flow.ctx.reader() as uow:
            assert channel_stock._told(uow, channel, pairs) == expected
