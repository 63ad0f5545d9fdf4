"""Orders: placing with routing and reservation, the state machine and its stock effects, expiry."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.domain.errors import IllegalTransition, InsufficientStock, PickupCodeRejected, PickupLocked
from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine
from hub.domain.order_states import TRANSITIONS, OrderStatus
from hub.services import inventory, money_owed, orders
from hub.storage.tables import OrderTransition, OutboxMessage, utcnow
from tests.support import count

S = OrderStatus
ADDR = Address("Near Jing'an temple", 31.2250, 121.4450, "Li Lei", "13800138000")


def stock_up(ctx, qty=10):
    with ctx.uow() as uow:
        for loc in ("S001", "S002", "WH01"):
            for sku in ("TEA-001", "CUP-002"):
                inventory.apply_count(uow, count(sku, loc, qty, 0))
        uow.commit()


def cmd(kind="pickup", key="k1", qty=2, store="S001", sku="TEA-001"):
    f = Fulfillment(FulfillmentType(kind), store if kind == "pickup" else None, None if kind == "pickup" else ADDR)
    return orders.PlaceOrder("miniprogram", key, (OrderLine(sku, qty, 12800),), Buyer("b1", "Li Lei", "138"), f)


def place(ctx, c, now=None):
    with ctx.uow() as uow:
        order, created = orders.place(uow, ctx.config, c, now=now)
        uow.commit()
        return order.id, created


def level(ctx, loc="S001", sku="TEA-001"):
    with ctx.uow() as uow:
        return inventory.stock_at(uow.session, ctx.config, sku, loc)


def step(ctx, order_id, target, source="test"):
    with ctx.uow() as uow:
        order = orders.get(uow, order_id)
        changed = orders.transition(uow, order, target, source)
        uow.commit()
        return changed


def pay(ctx, order_id, ref="tx1"):
    with ctx.uow() as uow:
        orders.mark_paid(uow, orders.get(uow, order_id), "wechat_pay", ref)
        uow.commit()


def test_place_reserves_and_is_idempotent_by_key(ctx):
    stock_up(ctx)
    oid, created = place(ctx, cmd())
    again, created_again = place(ctx, cmd())
    assert created and not created_again and again == oid
    assert level(ctx).reserved == 2
    with pytest.raises(orders.IdempotencyConflict):
        place(ctx, cmd(qty=3))


def test_short_stock_refuses_and_reserves_nothing(ctx):
    stock_up(ctx, qty=1)
    with pytest.raises(InsufficientStock):
        place(ctx, cmd(qty=2))
    assert level(ctx).reserved == 0


PATHS = {
    FulfillmentType.PICKUP: [S.PAID, S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED,
                             S.COMPLETED],
    FulfillmentType.DELIVERY: [S.PAID, S.ALLOCATED, S.DISPATCHED, S.RIDER_ASSIGNED, S.PICKED_UP, S.DELIVERED,
                               S.COMPLETED],
    FulfillmentType.EXPRESS: [S.PAID, S.ALLOCATED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED, S.COMPLETED],
}


@pytest.mark.parametrize("kind", list(PATHS))
def test_happy_path_records_history_and_commits_stock_once(ctx, kind):
    stock_up(ctx)
    oid, _ = place(ctx, cmd(kind.value))
    with ctx.uow() as uow:
        loc = orders.get(uow, oid).location_id
    for target in PATHS[kind]:
        assert step(ctx, oid, target)
    lv = level(ctx, loc)
    assert (lv.on_hand, lv.reserved) == (8, 0)
    with ctx.uow() as uow:
        history = [t.to_status for t in uow.session.query(OrderTransition).filter_by(order_id=oid)
                   .order_by(OrderTransition.id)]
    assert history == [S.PENDING_PAYMENT, *PATHS[kind]]


# States off the forward path: a cancel request, a failed delivery, a return.
OFF_PATH = {
    FulfillmentType.PICKUP: {S.RETURNED: [S.PAID, S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED,
                                         S.RETURNED],
                             S.REFUNDED: [S.PAID, S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED,
                                         S.REFUNDED]},
    FulfillmentType.DELIVERY: {
        S.PICKING: [S.PAID, S.ALLOCATED, S.PICKING], S.PICKED: [S.PAID, S.ALLOCATED, S.PICKING, S.PICKED],
        S.CANCEL_REQUESTED: [S.PAID, S.ALLOCATED, S.DISPATCHED, S.CANCEL_REQUESTED],
        S.RETURNING: [S.PAID, S.ALLOCATED, S.DISPATCHED, S.PICKED_UP, S.RETURNING],
        S.RETURNED: [S.PAID, S.ALLOCATED, S.DISPATCHED, S.PICKED_UP, S.RETURNED]},
    FulfillmentType.EXPRESS: {S.PICKING: [S.PAID, S.ALLOCATED, S.PICKING],
                              S.PICKED: [S.PAID, S.ALLOCATED, S.PICKING, S.PICKED],
                              S.RETURNING: [S.PAID, S.ALLOCATED, S.SHIPPED, S.RETURNING],
                              S.RETURNED: [S.PAID, S.ALLOCATED, S.SHIPPED, S.RETURNED]},
}


def all_legal_edges():
    for kind, table in TRANSITIONS.items():
        for src, targets in table.items():
            for dst in targets:
                yield kind, src, dst


def test_every_legal_transition_is_reachable_and_applies(ctx):
    """Walk to each edge's source state along a known path, then take the edge."""
    stock_up(ctx, qty=500)
    n = 0
    for kind, src, dst in all_legal_edges():
        path = PATHS[kind]
        if src == S.PENDING_PAYMENT:
            prefix = []
        elif src in path:
            prefix = path[: path.index(src) + 1]
        elif src == S.CANCELLED:
            prefix = [S.PAID, S.CANCELLED]           # a paid cancellation can be refunded
        elif src in OFF_PATH[kind]:
            prefix = OFF_PATH[kind][src]
        else:
            raise AssertionError(f"no path to {src} for {kind}")
        oid, _ = place(ctx, cmd(kind.value, key=f"edge{n}", qty=1))
        n += 1
        for target in prefix:
            step(ctx, oid, target)
        assert step(ctx, oid, dst), (kind, src, dst)
    assert n == sum(len(t) for table in TRANSITIONS.values() for t in table.values())


@pytest.mark.parametrize("kind,prefix,target", [
    ("pickup", [], S.COLLECTED),
    ("pickup", [S.PAID, S.ALLOCATED], S.DISPATCHED),
    ("delivery", [S.PAID, S.ALLOCATED, S.DISPATCHED, S.PICKED_UP], S.CANCELLED),
    ("delivery", [S.PAID, S.ALLOCATED, S.DISPATCHED], S.CANCELLED),   # a rider is booked: only a request
    ("delivery", [S.PAID, S.ALLOCATED, S.DISPATCHED, S.PICKED_UP, S.RETURNING], S.DELIVERED),
    ("express", [S.PAID, S.ALLOCATED, S.SHIPPED], S.READY_FOR_PICKUP),
    ("express", [S.CANCELLED], S.PAID),
    ("pickup", [S.CANCELLED], S.REFUNDED),          # never paid: nothing to refund
    ("delivery", [S.PAID, S.ALLOCATED, S.DISPATCHED, S.PICKED_UP, S.DELIVERED, S.COMPLETED], S.DELIVERED),
])
def test_illegal_transitions_are_refused_and_change_nothing(ctx, kind, prefix, target):
    stock_up(ctx)
    oid, _ = place(ctx, cmd(kind))
    for t in prefix:
        step(ctx, oid, t)
    before_level = level(ctx, _loc(ctx, oid))
    with pytest.raises(IllegalTransition, match=f"to {target}"):
        step(ctx, oid, target)
    with ctx.uow() as uow:
        order = orders.get(uow, oid)
        assert order.status == (prefix[-1] if prefix else S.PENDING_PAYMENT)
        assert len(order.transitions) == 1 + len(prefix)
    assert level(ctx, _loc(ctx, oid)) == before_level


def _loc(ctx, oid):
    with ctx.uow() as uow:
        return orders.get(uow, oid).location_id


def test_cancel_releases_and_a_refund_after_collection_moves_no_stock_until_the_goods_come_back(ctx):
    """A money-only refund (仅退款) of a collected order used to put its goods back on the shelf (issue 19)."""
    stock_up(ctx)
    a, _ = place(ctx, cmd(key="a"))
    b, _ = place(ctx, cmd(key="b", qty=3))
    assert level(ctx).reserved == 5
    step(ctx, a, S.CANCELLED)
    assert level(ctx).reserved == 3
    pay(ctx, b)
    for t in (S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED):
        step(ctx, b, t)
    assert (level(ctx).on_hand, level(ctx).reserved) == (7, 0)
    step(ctx, b, S.REFUNDED)
    assert level(ctx).on_hand == 7                  # the goods are with the buyer
    step(ctx, b, S.RETURNED)                        # handed back at the store later
    assert level(ctx).on_hand == 10
    assert not step(ctx, b, S.RETURNED)             # reported again: nothing
    assert step(ctx, b, S.REFUNDED)
    with pytest.raises(IllegalTransition):          # returned once: never on the shelf twice
        step(ctx, b, S.RETURNED)
    assert level(ctx).on_hand == 10


def test_payment_moves_to_allocated_once(ctx):
    stock_up(ctx)
    oid, _ = place(ctx, cmd())
    pay(ctx, oid, "tx-9")
    pay(ctx, oid, "tx-9")                       # the platform notifies again
    with ctx.uow() as uow:
        order = orders.get(uow, oid)
        assert order.status == S.ALLOCATED and order.payment_ref == "tx-9" and order.expires_at is None
        assert [t.to_status for t in order.transitions] == [S.PENDING_PAYMENT, S.PAID, S.ALLOCATED]


def test_unpaid_orders_expire_and_release(ctx):
    stock_up(ctx)
    past = utcnow() - timedelta(minutes=ctx.config.hub.reservation_ttl_minutes + 1)
    old, _ = place(ctx, cmd(key="old"), now=past)
    fresh, _ = place(ctx, cmd(key="fresh"))
    with ctx.uow() as uow:
        due = orders.due_for_expiry(uow, utcnow())
    assert due == [old]
    with ctx.uow() as uow:
        orders.cancel(uow, orders.get(uow, old), "hub", "unpaid after 15 minutes")
        uow.commit()
    assert level(ctx).reserved == 2
    # A payment that arrives after expiry is owed back, not revived: the order stays cancelled, with a
    # refund of that payment requested; refunded follows only on the payment platform's word.
    pay(ctx, old, "late-tx")
    with ctx.uow() as uow:
        order = orders.get(uow, old)
        assert order.status == S.CANCELLED and order.payment_ref == "late-tx"
        [refund] = money_owed.of_order(uow, old)
        assert (refund.payment_ref, refund.amount_fen, refund.status, refund.cause) == (
            "late-tx", order.total_fen, "requested", "paid_late")
        assert orders.get(uow, fresh).status == S.PENDING_PAYMENT
    assert level(ctx).reserved == 2            # the late payment takes no stock


def test_pickup_code_locks_after_too_many_wrong_attempts(ctx):
    stock_up(ctx)
    oid, _ = place(ctx, cmd())
    max_attempts = ctx.config.hub.pickup_code_max_attempts
    for i in range(max_attempts):
        with ctx.uow() as uow:
            order = orders.get(uow, oid)
            err = PickupLocked if i == max_attempts - 1 else PickupCodeRejected
            with pytest.raises(err):
                orders.check_pickup_code(ctx.config, order, "not-the-code")
            uow.commit()
    with ctx.uow() as uow:
        order = orders.get(uow, oid)
        with pytest.raises(PickupLocked):
            orders.check_pickup_code(ctx.config, order, order.pickup_code)   # even the right code, for now
        later = utcnow() + timedelta(minutes=ctx.config.hub.pickup_code_lock_minutes + 1)
        orders.check_pickup_code(ctx.config, order, order.pickup_code, now=later)


def test_a_channel_cannot_order_what_its_safety_stock_holds_back(ctx):
    """The mini-program channel holds back 1 unit per location: it sells what it shows, no more."""
    with ctx.uow() as uow:
        inventory.apply_count(uow, count("TEA-001", "S001", 3, 0))
        uow.commit()
    channel_safety = ctx.config.channel("miniprogram").safety_stock
    assert channel_safety == 1
    with pytest.raises(InsufficientStock) as exc:
        place(ctx, cmd(qty=3))
    assert exc.value.short == [{"sku": "TEA-001", "location_id": "S001", "wanted": 3, "available": 2}]
    place(ctx, cmd(qty=2, key="k2"))
    assert level(ctx).reserved == 2


def test_uncollected_paid_pickup_is_cancelled_restocked_and_its_refund_requested(ctx):
    from hub.services import housekeeping

    stock_up(ctx)
    oid, _ = place(ctx, cmd(qty=3))
    pay(ctx, oid)
    for t in (S.PICKING, S.PICKED, S.READY_FOR_PICKUP):
        step(ctx, oid, t)
    assert level(ctx).reserved == 3
    assert housekeeping.cancel_uncollected(ctx, now=utcnow() + timedelta(days=1)) == []   # not yet due
    later = utcnow() + timedelta(days=ctx.config.hub.pickup_uncollected_days, minutes=1)
    assert housekeeping.cancel_uncollected(ctx, now=later) == [oid]
    with ctx.uow() as uow:
        order = orders.get(uow, oid)
        # refunded only when the platform says the money went back; until then the refund is pending
        assert order.status == S.CANCELLED
        [refund] = money_owed.of_order(uow, oid)
        assert (refund.amount_fen, refund.status, refund.cause) == (order.total_fen, "requested", "not_collected")
        due = [e for e in uow.session.execute(select(OutboxMessage)).scalars()
               if e.event_type == "order.refund_due"]
        assert [e.payload["data"]["refund_no"] for e in due] == [refund.refund_no]
    assert (level(ctx).on_hand, level(ctx).reserved) == (10, 0)


def test_placing_locks_the_stock_row_last_so_a_hot_row_is_held_for_the_commit_only(ctx):
    """Issue 11: orders on a popular SKU at one store queue on its stock row (a flash sale's orders no longer
    do: they draw from the sale's hold, `test_flash_sale_hold.py`). Everything else the order writes
    (the order, its lines and history, the reservation and its ledger row) goes in before that row's
    UPDATE, its stock.changed event too; after it nothing but the commit (issue 26: a pickup, never re-routed, takes
    no savepoint, so none is released while the row is locked)."""
    from sqlalchemy import event
    stock_up(ctx)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        order_id, created = place(ctx, cmd(key="hot-row"))
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert created
    stock_updates = [i for i, s in enumerate(statements) if s.startswith("update stock_levels")]
    assert len(stock_updates) == 1
    after = statements[stock_updates[0] + 1:]
    assert after == [], after
    assert not [s for s in statements if "savepoint" in s]
    assert level(ctx).reserved == 2
    with ctx.uow() as uow:
        order = orders.get(uow, order_id)
        assert [(line.sku, line.location_id) for line in order.lines] == [("TEA-001", "S001")]
        assert order.pickup_code and order.location_id == "S001"
        assert order.transitions[0].detail == "pickup from S001 (" + order.routing["rule"] + ")"
        events = uow.session.execute(select(OutboxMessage.payload).where(OutboxMessage.event_type == "stock.changed"))
        said = [e["data"] for e in events.scalars()]
        assert {"sku": "TEA-001", "location_id": "S001", "cause": "reservation"} in said


def test_the_expiry_sweep_reports_the_hold_the_reservation_was_given(ctx):
    # The reservation's expires_at is what the order was promised when placed: the sweep reads it, so a policy
    # changed since (a longer hold for this channel, say) does not rewrite what happened.
    from hub.services import housekeeping
    from hub.storage.tables import Reservation

    stock_up(ctx)
    oid, _ = place(ctx, cmd(key="held"))
    with ctx.uow() as uow:
        for res in uow.session.execute(select(Reservation).where(Reservation.order_id == oid)).scalars():
            res.expires_at = res.created_at + timedelta(minutes=40)
        uow.commit()
    assert housekeeping.expire_unpaid(ctx, now=utcnow() + timedelta(hours=1)) == [oid]
    with ctx.uow() as uow:
        order = orders.get(uow, oid)
        assert order.status == S.CANCELLED and order.transitions[-1].detail == "unpaid after 40 minutes"
