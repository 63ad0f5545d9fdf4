"""Issue 19, flash sales under hostile clients, on PostgreSQL over real HTTP: the same Idempotency-Key sent
again with a bigger qty while the first attempt's order is still being written, and a gate that lost the sale
while an admitted order was being written. The ledger (the sale's own count) has the last word on every unit,
whatever the gate said. Both gates: the in-process one and Redis."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from hub.domain.flash_gate import MemoryGate
from hub.services import inventory
from hub.storage.tables import OrderLineRow, OrderRow
from tests.api.conftest import OPS_KEY
from tests.hostile.conftest import Live, at_once
from tests.redis_support import redis_gate
from tests.support import at

SALES = "/admin/api/flash-sales"


@pytest.fixture(params=["memory", "redis"])
def gated(request, live: Live) -> Iterator[Live]:
    """The live app with the in-process gate, and with the Redis gate."""
    if request.param == "memory":
        yield live
    else:
        with redis_gate() as gate:
            live.ctx.gate = gate
            yield live


def arm(live: Live, quota: int, limit: int = 1) -> str:
    with live.ctx.uow() as uow:
        from hub.domain.model import StockCount

        inventory.apply_count(uow, StockCount("test", "seed", "TEA-001", "S001", 20, at(-60)))
        uow.commit()
    r = live.post(SALES, {"sku": "TEA-001", "location_id": "S001", "quota": quota, "per_buyer_limit": limit,
                          "starts_at": at(-1).isoformat(), "ends_at": at(60).isoformat(), "min_interval_ms": 0},
                  key=OPS_KEY)
    assert r.status_code == 201, r.text
    return r.json()["sale_id"]


def attempt(live: Live, sale: str, buyer: str, key: str | None = None, qty: int = 1):
    return live.post(f"/api/v1/flash-sales/{sale}/orders", {"qty": qty, "buyer": {"id": buyer}},
                     headers={"Idempotency-Key": key or uuid.uuid4().hex})


def drawn(live: Live, sale: str) -> int:
    with live.ctx.uow() as uow:
        return inventory.drawn_from(uow.session, sale)


def order_qtys(live: Live, sale: str) -> list[int]:
    with live.ctx.uow() as uow:
        return sorted(uow.session.execute(select(OrderLineRow.qty).join(OrderRow, OrderRow.id == OrderLineRow.order_id)
                                          .where(OrderRow.flash_sale_id == sale)).scalars())


@contextmanager
def first_order_write_held(live: Live) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first statement writing an order (the admitted order's rows, its transaction open, the sale read)
    waits until the test releases it: (reached, release). Later order writes pass."""
    reached, release, taken = threading.Event(), threading.Event(), threading.Lock()

    def hold(conn, cursor, statement, *args) -> None:
        if "insert into orders" in statement.lower() and taken.acquire(blocking=False):
            reached.set()
            release.wait(30)

    event.listen(live.ctx.engine, "before_cursor_execute", hold)
    try:
        yield reached, release
    finally:
        release.set()
        event.remove(live.ctx.engine, "before_cursor_execute", hold)


def in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def test_the_same_key_with_a_bigger_qty_while_the_first_is_written_is_refused(gated):
    """Old code: the gate answered B "again" before any check and B's order of 1000 units was placed from a
    quota of 5, past the buyer's limit of 1; A then met the unique key (422) and its unit went back."""
    sale = arm(gated, quota=5, limit=1)
    with first_order_write_held(gated) as (reached, release):
        a, a_out = in_thread(lambda: attempt(gated, sale, "b1", key="k1", qty=1))
        assert reached.wait(10)
        b = attempt(gated, sale, "b1", key="k1", qty=1000)
        release.set()
        a.join(30)
    assert b.status_code == 422 and b.json()["error"] == "idempotency_conflict", b.text
    assert a_out[0].status_code == 201, a_out[0].text
    assert order_qtys(gated, sale) == [1] and drawn(gated, sale) == 1
    assert gated.ctx.gate.state(sale).left == 4
    assert attempt(gated, sale, "b1", key="k1", qty=1).status_code == 200     # the real retry: the same order
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json()["result"]
    assert result == {**result, "sold_in_ledger": 1, "oversold": 0, "agree": True}


def lose_the_gate(live: Live) -> None:
    gate = live.ctx.gate
    if isinstance(gate, MemoryGate):
        live.ctx.gate = MemoryGate()
    else:
        for key in gate.client.scan_iter(f"{gate.prefix}*"):
            gate.client.delete(key)


def test_a_gate_that_lost_the_sale_mid_order_cannot_oversell_the_quota(gated):
    """Old code: A admitted, the gate emptied while A's order was written, B and C admitted by the restored gate:
    three orders from a quota of two (`oversold: 1`). The sale's own count refuses the unit too many."""
    sale = arm(gated, quota=2, limit=1)
    with first_order_write_held(gated) as (reached, release):
        a, a_out = in_thread(lambda: attempt(gated, sale, "bA"))
        assert reached.wait(10)
        lose_the_gate(gated)
        b, c = attempt(gated, sale, "bB"), attempt(gated, sale, "bC")
        release.set()
        a.join(30)
    assert (b.status_code, c.status_code) == (201, 201), (b.text, c.text)
    assert a_out[0].status_code == 409 and a_out[0].json()["error"] == "sold_out", a_out[0].text
    assert order_qtys(gated, sale) == [1, 1] and drawn(gated, sale) == 2
    assert attempt(gated, sale, "bD").json()["error"] == "sold_out"
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json()["result"]
    assert result == {**result, "sold_in_ledger": 2, "held_by_gate": 2, "oversold": 0, "agree": True}
    assert gated.ctx.gate.state(sale).left == 0


def test_a_rush_of_same_key_pairs_with_bigger_qtys_sells_no_unit_too_many(gated):
    """No instrumentation: pairs of one key (qty 1, then qty 50) from buyers of limit 1, all at once."""
    sale = arm(gated, quota=5, limit=1)
    calls = []
    for i in range(12):
        calls += [lambda i=i: attempt(gated, sale, f"b{i}", key=f"k{i}", qty=1),
                  lambda i=i: attempt(gated, sale, f"b{i}", key=f"k{i}", qty=50)]
    answers = at_once(*calls)
    assert all(not isinstance(a, BaseException) and a.status_code < 500 for a in answers), answers
    qtys = order_qtys(gated, sale)
    assert all(q == 1 for q in qtys) and len(qtys) <= 5 and drawn(gated, sale) == len(qtys)
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json()["result"]
    assert result["oversold"] == 0 and result["agree"], result
