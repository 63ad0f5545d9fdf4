"""A flash sale holds its quota from arming to ending (issue 11): the rush's orders draw their units from
the hold and write no stock row, a cancelled order's unit goes back into the hold while the sale runs,
ending hands the unsold rest back to free stock, and the stock row always equals what the orders and the
running sales hold — however attempts, cancellations, collections, till sales and the end interleave."""
from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hub.domain.flash_gate import MemoryGate
from hub.domain.model import StockCount
from hub.services import flash_sales, inventory
from hub.storage.tables import FlashSaleRow, OrderRow, Reservation
from tests.support import at, statements_run

from .conftest import OPS_KEY, POS_KEYS
from .test_flash_sales import SALES, arm, attempt, drawn, give_backs


def free(api) -> int:
    return api.level().available


def held_by_running_sales(api, sku: str = "TEA-001", loc: str = "S001") -> int:
    with api.ctx.uow() as uow:
        sales = uow.session.execute(select(FlashSaleRow).where(
            FlashSaleRow.sku == sku, FlashSaleRow.location_id == loc, FlashSaleRow.status == "armed",
            FlashSaleRow.stock_held.is_(True))).scalars().all()
        return sum(s.quota - inventory.drawn_from(uow.session, s.id) for s in sales)


def open_reservations(api, sku: str = "TEA-001", loc: str = "S001") -> int:
    with api.ctx.uow() as uow:
        return int(uow.session.execute(select(func.coalesce(func.sum(Reservation.qty), 0)).where(
            Reservation.sku == sku, Reservation.location_id == loc, Reservation.status == "open")).scalar_one())


def assert_ledger_explained(api) -> None:
    """The stock row's reserved = units open orders hold + what running sales still hold for the rush."""
    assert api.level().reserved == open_reservations(api) + held_by_running_sales(api)


def cancel(api, order_id: str) -> None:
    assert api.post(f"/api/v1/orders/{order_id}/cancel", {}).status_code == 200


def collect(api, order_id: str) -> None:
    api.pay(order_id, ref=f"tx-{order_id}")
    store = f"/api/v1/stores/S001/pickup-orders/{order_id}"
    assert api.post(f"{store}/ready", {}, key=POS_KEYS["S001"]).status_code == 200
    code = api.get(f"/api/v1/orders/{order_id}").json["pickup_code"]
    r = api.post(f"{store}/collect", {"pickup_code": code}, key=POS_KEYS["S001"])
    assert r.status_code == 200, r.json


def end(api, sale: str) -> dict:
    r = api.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY)
    assert r.status_code == 200, r.json
    return r.json["result"]


def test_arming_holds_the_quota_away_from_other_orders_and_sales(api):
    sale = arm(api, quota=15)                              # 20 on hand at S001
    assert api.level().reserved == 15 and free(api) == 5
    assert api.post("/api/v1/orders", {"lines": [{"sku": "TEA-001", "qty": 6}], "buyer": {"id": "b"},
                                       "fulfillment": {"type": "pickup", "store_id": "S001"}},
                    headers={"Idempotency-Key": "k"}).status_code == 409
    second = api.post(SALES, {"sku": "TEA-001", "location_id": "S001", "quota": 6, "per_buyer_limit": 1,
                              "starts_at": at(-1).isoformat(), "ends_at": at(60).isoformat()}, key=OPS_KEY)
    assert second.status_code == 409 and second.json["short"][0]["available"] == 5
    assert attempt(api, sale, "b1").status_code == 201
    assert api.level().reserved == 15 and free(api) == 5           # drawn from the hold, not from free stock


def test_a_rush_order_writes_and_locks_no_stock_row(api):
    """The hot row of issue 11: an admitted order used to UPDATE the sale's one stock row, so a rush's
    orders queued on its lock. Now the order's statements never touch stock_levels for writing."""
    sale = arm(api, quota=5)
    with statements_run(api.ctx.engine) as statements:
        assert attempt(api, sale, "b1").status_code == 201
    touching = [s for s in statements if "stock_levels" in s]
    assert touching and not [s for s in touching if s.startswith(("update", "insert")) or "for update" in s]
    assert drawn(api, sale) == 1


def test_a_rush_order_is_two_statements_on_postgresql(api):
    """Each of an admitted order's round trips waits a turn of a gateway busy with the rush's refusals, so it
    makes few: the sale with its SKU and its store's stock row (one read, which also keeps the sale from
    ending), and the order's rows (order, line, history, reservation) in one statement; no idempotency look-up
    for an attempt the gate saw for the first time. SQLite, with no network, writes them one by one. The sale's
    quota UPDATE (issue 19) is last: in that one statement on PostgreSQL, after the rows on SQLite."""
    sale = arm(api, quota=5)
    attempt(api, sale, "b0")
    with statements_run(api.ctx.engine) as statements:
        assert attempt(api, sale, "b1").status_code == 201
    reads = [s for s in statements if s.startswith("select")]
    writes = [s for s in statements if s.startswith(("insert", "with"))]
    quota = "update flash_sales set drawn=(flash_sales.drawn +"
    assert len(reads) == 1 and "join skus" in reads[0] and "stock_levels" in reads[0]
    if api.ctx.engine.dialect.name == "postgresql":
        assert len(writes) == 1 and writes[0].rfind(quota) > writes[0].rfind("insert into reservations")
        assert [s for s in statements if s not in reads + writes] == []
    else:
        assert len(writes) == 4
        others = [s for s in statements if s not in reads + writes]
        assert len(others) == 2 and others[0] == "begin immediate" and others[1].startswith(quota)  # writer lock
        assert statements[-1] == others[1]
    assert drawn(api, sale) == 2


def test_a_cancelled_order_goes_back_into_the_hold_and_the_end_returns_the_rest(api):
    sale = arm(api, quota=5)
    kept, cancelled, collected = (attempt(api, sale, f"b{i}").json["order_id"] for i in range(3))
    cancel(api, cancelled)
    assert api.level().reserved == 5 and free(api) == 15          # the unit is the sale's again, not free
    give_backs(api)
    assert api.ctx.gate.state(sale).left == 3
    collect(api, collected)
    assert (api.level().on_hand, api.level().reserved) == (19, 4)
    assert_ledger_explained(api)
    result = end(api, sale)
    assert result["sold_in_ledger"] == 2 and result["agree"] and result["oversold"] == 0
    assert (api.level().on_hand, api.level().reserved, free(api)) == (19, 1, 18)   # only `kept` still holds
    assert_ledger_explained(api)
    end(api, sale)                                                  # ending again hands back nothing more
    assert api.level().reserved == 1
    cancel(api, kept)                                               # after the end: to free stock
    assert (api.level().reserved, free(api)) == (0, 19)


def test_a_till_that_sold_the_held_units_refuses_the_draw(api):
    sale = arm(api, quota=5)
    r = api.post("/api/v1/stores/S001/sales", {"receipt_id": "R1", "sold_at": at(0).isoformat(),
                                               "lines": [{"sku": "TEA-001", "qty": 17}]}, key=POS_KEYS["S001"])
    assert r.status_code == 201                          # the till's sale happened: 3 left, 5 held
    refused = attempt(api, sale, "b1")
    assert refused.status_code == 409 and refused.json["error"] == "insufficient_stock"
    assert drawn(api, sale) == 0 and api.ctx.gate.state(sale).left == 5
    end(api, sale)
    assert (api.level().on_hand, api.level().reserved) == (3, 0)


def test_ending_while_the_rush_runs_leaves_the_ledger_explained(api):
    """Attempts, cancellations and the end race each other; the end waits for orders drawing right then,
    and an order that comes after the end is refused, so the hold's rest is counted once."""
    sale = arm(api, quota=12)
    go = threading.Barrier(9)

    def buyer(n: int) -> list[str]:
        go.wait()
        placed = []
        for i in range(6):
            r = attempt(api, sale, f"buyer-{n}-{i}")
            assert r.status_code in (201, 409), r.json
            if r.status_code == 201:
                placed.append(r.json["order_id"])
        for order_id in placed[::2]:
            cancel(api, order_id)
        return placed

    def ender() -> None:
        go.wait()
        end(api, sale)

    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(buyer, n) for n in range(8)] + [pool.submit(ender)]
        for f in futures:
            f.result()
    assert_ledger_explained(api)
    assert api.level().reserved == open_reservations(api)          # ended: nothing held for the sale
    assert end(api, sale)["oversold"] == 0


EXAMPLES = itertools.count()
OPS = st.lists(st.sampled_from(["attempt", "attempt", "attempt", "cancel", "collect", "till", "end"]),
               min_size=1, max_size=14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_any_interleaving_keeps_the_ledger_explained(api, ops):
    """Property: whatever the order of attempts, cancellations, collections, till sales and the end, the
    stock row is explained by open orders and running sales, and no more is sold than the quota."""
    with api.ctx.uow() as uow:             # a newer count each example: tills and collections add up
        n = next(EXAMPLES)
        inventory.apply_count(uow, StockCount("test", f"prop-{n}", "TEA-001", "S001", 1000, at(-59 + n / 100)))
        uow.commit()
    before = drawn_total(api)
    sale = arm(api, quota=4)
    placed: list[str] = []
    for op in ops:
        if op == "attempt":
            r = attempt(api, sale, f"b-{uuid.uuid4().hex[:8]}")
            assert r.status_code in (201, 409), r.json
            if r.status_code == 201:
                placed.append(r.json["order_id"])
        elif op == "cancel" and placed:
            order_id = placed.pop(0)
            if api.get(f"/api/v1/orders/{order_id}").json["status"] == "pending_payment":
                cancel(api, order_id)
                give_backs(api)
        elif op == "collect" and placed:
            collect(api, placed.pop())
        elif op == "till":
            r = api.post("/api/v1/stores/S001/sales", {"receipt_id": uuid.uuid4().hex, "sold_at": at(0).isoformat(),
                                                       "lines": [{"sku": "TEA-001", "qty": 1}]}, key=POS_KEYS["S001"])
            assert r.status_code == 201
        elif op == "end":
            assert end(api, sale)["oversold"] == 0
        assert_ledger_explained(api)
        assert drawn(api, sale) <= 4
    end(api, sale)
    for order_id in placed:                                # leave no open order behind for the next example
        if api.get(f"/api/v1/orders/{order_id}").json["status"] == "pending_payment":
            cancel(api, order_id)
    assert_ledger_explained(api)
    assert drawn_total(api) - before <= 4


def drawn_total(api) -> int:
    with api.ctx.uow() as uow:
        return int(uow.session.execute(select(func.coalesce(func.sum(Reservation.qty), 0)).where(
            Reservation.flash_sale_id.is_not(None), Reservation.status.in_(("open", "committed")))).scalar_one())


def test_a_rush_order_written_outside_the_orm_reads_back_whole(api):
    """The admitted order is written with Core INSERTs (`storage/uow.py`); read back through the API and
    the ORM it is a whole order: lines at the store, its history, a pickup code, a reservation that expires."""
    sale = arm(api, quota=5, price_fen=990)
    placed = attempt(api, sale, "b1").json
    shown = api.get(f"/api/v1/orders/{placed['order_id']}").json
    assert shown["status"] == "pending_payment" and shown["total_fen"] == 990 == placed["total_fen"]
    assert shown["lines"] == [{"sku": "TEA-001", "qty": 1, "unit_price_fen": 990, "amount_fen": 990}]
    assert [t["status"] for t in shown["timeline"]] == ["pending_payment"]
    assert len(shown["pickup_code"]) == 6 and shown["fulfillment"]["store_id"] == "S001"
    with api.ctx.uow() as uow:
        order = uow.session.get(OrderRow, placed["order_id"])
        assert order.flash_sale_id == sale and order.version == 1 and order.pickup_attempts == 0
        assert [line.location_id for line in order.lines] == ["S001"]
        (res,) = uow.session.execute(select(Reservation).where(Reservation.order_id == order.id)).scalars()
        assert (res.flash_sale_id, res.status, res.qty) == (sale, "open", 1) and res.expires_at is not None


def sale_drawn(api, sale: str) -> int:
    """The sale's own count (`flash_sales.drawn`): the quota's last word."""
    with api.ctx.uow() as uow:
        return uow.session.get(FlashSaleRow, sale).drawn


def pick_short(api, order_id: str, qty_picked: int) -> None:
    api.pay(order_id, ref=f"tx-{order_id}")
    r = api.post(f"/api/v1/stores/S001/orders/{order_id}/picked",
                 {"lines": [{"sku": "TEA-001", "qty_picked": qty_picked}], "staff": "Wang"}, key=POS_KEYS["S001"])
    assert r.status_code == 200, r.json


def test_a_short_pick_of_a_sales_order_gives_the_missing_units_back_to_the_hold_while_it_runs(api):
    """Like a cancel or a channel's part refund (`release_part`): the order no longer holds the units, so the
    sale's count, its orders' reservations and the stock row's hold agree; the shelf's shortage (on-hand down)
    comes out of free stock, and the end hands the whole unsold rest back."""
    sale = arm(api, quota=5, limit=3)                         # 20 on hand at S001
    order_id = attempt(api, sale, "b1", qty=3).json["order_id"]
    pick_short(api, order_id, 1)                              # 2 of the 3 were not on the shelf
    assert sale_drawn(api, sale) == drawn(api, sale) == 1
    assert (api.level().on_hand, api.level().reserved, free(api)) == (18, 5, 13)   # the hold keeps its 4 + 1
    assert_ledger_explained(api)
    end(api, sale)
    assert (api.level().on_hand, api.level().reserved, free(api)) == (18, 1, 17)   # only the order's 1 held
    assert_ledger_explained(api)


def test_a_short_pick_after_the_sale_ended_gives_the_missing_units_to_free_stock(api):
    """Once the sale has ended its hold is gone (`release_hold` handed the rest back): the units leave the
    reservation for free stock, as a release after the end does; the sale's count stays what it sold."""
    sale = arm(api, quota=5, limit=3)
    order_id = attempt(api, sale, "b1", qty=3).json["order_id"]
    end(api, sale)
    assert (api.level().on_hand, api.level().reserved) == (20, 3)
    pick_short(api, order_id, 1)
    assert sale_drawn(api, sale) == 3 and drawn(api, sale) == 1
    assert (api.level().on_hand, api.level().reserved, free(api)) == (18, 1, 17)
    assert_ledger_explained(api)


@pytest.mark.parametrize("gate_lost", [False, True])
def test_a_returned_order_still_counts_as_the_sales_in_the_gate_and_the_ledger(api, gate_lost):
    """A sale's order collected and handed back: its goods are on-hand again as free stock (not in the hold),
    so the sale's count keeps the unit (`drawn`, `inventory.drawn_from`). The gate's restore and the end's
    comparison count it too: a restored gate admits no unit the sale's count would refuse, and the end gives
    no unit "back" for an attempt whose order is the sale's."""
    sale = arm(api, quota=5)
    order_id = attempt(api, sale, "b1").json["order_id"]
    collect(api, order_id)
    r = api.post(f"/api/v1/stores/S001/pickup-orders/{order_id}/return", {"reason": "wrong tea"},
                 key=POS_KEYS["S001"])
    assert r.status_code == 200, r.json
    give_backs(api)
    assert sale_drawn(api, sale) == drawn(api, sale) == 1
    if gate_lost:
        api.ctx.gate = MemoryGate()
        assert flash_sales.restore_gate(api.ctx, sale)
    assert api.ctx.gate.state(sale).left == 4
    assert attempt(api, sale, "b1").status_code == 429                # the buyer's limit is spent
    result = end(api, sale)
    assert (result["sold_in_ledger"], result["held_by_gate"], result["stranded_given_back"]) == (1, 1, 0)
    assert result["agree"]
