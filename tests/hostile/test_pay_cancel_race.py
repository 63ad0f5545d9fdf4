"""A payment racing a cancel of the same order (issue 19, item 12).

The order's locking read used to return the copy the request had read before the lock (unlocked) without
refreshing it: the request that waited on the lock judged the order on a state already gone, and its write
hit the version check — `409 conflict`, the code of an illegal transition, so a backend that takes 409 as
final dropped a payment confirmation. Serialised on the order's row, either the payment came first (then the
cancel owes it back) or the cancel did (then the payment is money owed back): never a 409."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, select, text

from hub.domain.model import StockCount
from hub.services import inventory, money_owed, orders
from hub.storage.tables import OrderRow
from tests.api.conftest import order_body
from tests.hostile.conftest import Live, at_once
from tests.support import at


def stock(live: Live, qty: int = 50) -> None:
    with live.ctx.uow() as uow:
        inventory.apply_count(uow, StockCount("test", f"seed-{qty}", "TEA-001", "S001", qty, at(-60)))
        uow.commit()


def place(live: Live, key: str) -> str:
    r = live.post("/api/v1/orders", order_body(), headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return r.json()["order_id"]


def settled(live: Live, oid: str) -> tuple[str, list[tuple[str, str]]]:
    with live.ctx.reader() as uow:
        order = orders.get(uow, oid)
        return order.status, [(r.payment_ref, r.cause) for r in money_owed.of_order(uow, oid)]


def reserved(live: Live) -> int:
    with live.ctx.reader() as uow:
        return inventory.stock_at(uow.session, live.ctx.config, "TEA-001", "S001").reserved


def test_a_pay_and_a_cancel_sent_at_once_are_serialised_never_409(live: Live) -> None:
    stock(live)
    for n in range(8):
        oid = place(live, f"race-{n}")
        paid, cancelled = at_once(
            lambda oid=oid, n=n: live.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": f"tx-race-{n}"}),
            lambda oid=oid: live.post(f"/api/v1/orders/{oid}/cancel", {"reason": "changed my mind"}))
        assert paid.status_code == 200, paid.text
        assert cancelled.status_code == 200, cancelled.text
        status, owed = settled(live, oid)
        # Either order of the two: cancelled, and the payment owed back once (cancelled after it was paid,
        # or paid after it was cancelled).
        assert status == "cancelled"
        assert owed in ([(f"tx-race-{n}", "cancelled")], [(f"tx-race-{n}", "paid_late")]), owed
    assert reserved(live) == 0


@pytest.fixture
def cancel_holds_the_lock(live: Live):
    """The first locking read of an order is held (its transaction open, the row locked) until another
    backend waits on a lock: the cancel locks first, the payment then reads and waits behind it."""
    locked, state = threading.Event(), {"armed": True}

    def someone_waits() -> bool:
        with live.ctx.engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar())

    def after(conn, cursor, statement, params, context, executemany):
        if not (state["armed"] and "FOR UPDATE" in statement and "FROM orders" in statement):
            return
        state["armed"] = False
        locked.set()
        deadline = time.monotonic() + 20
        while not someone_waits():
            assert time.monotonic() < deadline, "the payment never waited on the order's lock"
            time.sleep(0.02)

    event.listen(live.ctx.engine, "after_cursor_execute", after)
    yield locked
    event.remove(live.ctx.engine, "after_cursor_execute", after)


def test_a_payment_waiting_on_a_cancels_lock_is_judged_on_the_cancelled_order(live: Live,
                                                                              cancel_holds_the_lock) -> None:
    stock(live)
    oid = place(live, "held")
    answers: dict[str, object] = {}
    cancel = threading.Thread(target=lambda: answers.__setitem__(
        "cancel", live.post(f"/api/v1/orders/{oid}/cancel", {"reason": "changed my mind"})))
    cancel.start()
    assert cancel_holds_the_lock.wait(20)
    # The cancel holds the row: the payment reads the order (still pending_payment), then waits on the lock.
    paid = live.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-held"})
    cancel.join(30)
    assert answers["cancel"].status_code == 200 and answers["cancel"].json()["status"] == "cancelled"
    assert paid.status_code == 200, paid.text            # was 409 conflict: a dropped confirmation
    assert paid.json()["status"] == "cancelled"
    assert settled(live, oid) == ("cancelled", [("tx-held", "paid_late")])
    with live.ctx.reader() as uow:
        order = uow.session.execute(select(OrderRow).where(OrderRow.id == oid)).scalar_one()
        assert order.payment_ref == "tx-held" and order.paid_at is not None
        assert [t.to_status for t in order.transitions] == ["pending_payment", "cancelled"]
    assert reserved(live) == 0
