"""Refunds of every state (issue 19, item 3): money and goods are apart.

For each state an order can be in, a refund asked through `POST /orders/{id}/refund` is refused with a
clear 4xx or accepted, and the platform's word that the money went back never puts goods on the shelf
(a money-only refund, 仅退款, of a collected or delivered order used to return its lines to on-hand).
Only a return moves stock — the store's hand-back, the courier's returned report — and a refunded order
can still be returned, once, with no second refund owed."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.domain.order_states import OrderStatus
from hub.services import courier_outcomes, money_owed, orders
from hub.storage.tables import OutboxMessage, StockMovement
from sandbox.credentials import sandbox_env
from sandbox.wechat_pay import WeChatPaySimulator
from tests.api.conftest import POS_KEYS, Api

S = OrderStatus
PAY = WeChatPaySimulator.from_env(sandbox_env())          # signs and encrypts notifications; no server needed
STORE = "/api/v1/stores/S001/pickup-orders"

# (fulfilment, the states walked through after payment (None: never paid), how it is reached)
SCENES = {
    "pickup/pending_payment": ("pickup", None),
    "pickup/cancelled_unpaid": ("pickup", [S.CANCELLED]),
    "pickup/allocated": ("pickup", []),
    "pickup/ready_for_pickup": ("pickup", [S.PICKING, S.PICKED, S.READY_FOR_PICKUP]),
    "pickup/collected": ("pickup", [S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED]),
    "pickup/completed": ("pickup", [S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED, S.COMPLETED]),
    "pickup/cancelled_paid": ("pickup", ["cancel"]),
    "pickup/returned": ("pickup", [S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED, "hand_back"]),
    "delivery/dispatched": ("delivery", [S.DISPATCHED]),
    "delivery/rider_assigned": ("delivery", [S.DISPATCHED, S.RIDER_ASSIGNED]),
    "delivery/cancel_requested": ("delivery", [S.DISPATCHED, S.CANCEL_REQUESTED]),
    "delivery/picked_up": ("delivery", [S.DISPATCHED, S.PICKED_UP]),
    "delivery/returning": ("delivery", [S.DISPATCHED, S.PICKED_UP, S.RETURNING]),
    "delivery/delivered": ("delivery", [S.DISPATCHED, S.PICKED_UP, S.DELIVERED]),
    "delivery/completed": ("delivery", [S.DISPATCHED, S.PICKED_UP, S.DELIVERED, S.COMPLETED]),
    "express/shipped": ("express", [S.SHIPPED]),
    "express/in_transit": ("express", [S.SHIPPED, S.IN_TRANSIT]),
    "express/delivered": ("express", [S.SHIPPED, S.DELIVERED]),
}
REFUSED = {"pickup/pending_payment", "pickup/cancelled_unpaid", "pickup/cancelled_paid", "pickup/returned"}
# Where the platform's "every fen is back" leaves the order.
AFTER = {"pickup/allocated": S.REFUNDED, "pickup/ready_for_pickup": S.REFUNDED,       # cancelled, refunded
         "pickup/collected": S.REFUNDED, "pickup/completed": S.REFUNDED,              # money only
         "delivery/dispatched": S.CANCEL_REQUESTED, "delivery/rider_assigned": S.CANCEL_REQUESTED,
         "delivery/cancel_requested": S.CANCEL_REQUESTED,                              # the courier decides
         "delivery/picked_up": S.PICKED_UP, "delivery/returning": S.RETURNING,        # the goods on their way
         "express/shipped": S.SHIPPED, "express/in_transit": S.IN_TRANSIT,
         "delivery/delivered": S.REFUNDED, "delivery/completed": S.REFUNDED, "express/delivered": S.REFUNDED}


def reach(api: Api, name: str) -> str:
    kind, steps = SCENES[name]
    oid = api.order(key=name, kind=kind)
    if steps is None:
        return oid
    if steps != [S.CANCELLED]:
        api.pay(oid, f"4200{oid}")
    for step in steps:
        if step == "cancel":
            assert api.post(f"/api/v1/orders/{oid}/cancel", {"reason": "changed my mind"}).status_code == 200
        elif step == "hand_back":
            assert api.post(f"{STORE}/{oid}/return", {"reason": "wrong size"}, key=POS_KEYS["S001"]).status_code == 200
        else:
            with api.ctx.uow() as uow:
                orders.transition(uow, orders.get(uow, oid, lock=True), step, "test")
                uow.commit()
    return oid


def where(api: Api, oid: str) -> tuple[str, str | None]:
    with api.ctx.reader() as uow:
        order = orders.get(uow, oid)
        return order.status, order.location_id


def on_hand(api: Api, location: str) -> int:
    return api.level(location).on_hand


def returns_of(api: Api, oid: str) -> int:
    with api.ctx.reader() as uow:
        return uow.session.execute(select(func.count()).select_from(StockMovement).where(
            StockMovement.kind == "return", StockMovement.external_id == f"order:{oid}:return")).scalar_one()


def refunds_due(api: Api, oid: str) -> int:
    with api.ctx.reader() as uow:
        rows = uow.session.execute(select(OutboxMessage).where(OutboxMessage.event_type == "order.refund_due"))
        return sum(1 for r in rows.scalars() if r.payload["data"]["order_id"] == oid)


def ask_and_settle(api: Api, oid: str, key: str = "refund-1"):
    """A full refund asked through the API; if taken, the platform's signed REFUND.SUCCESS for it."""
    r = api.post(f"/api/v1/orders/{oid}/refund", {"reason": "仅退款"}, headers={"Idempotency-Key": key})
    if r.status_code != 202:
        return r
    refund = r.json["refund"]
    body = PAY.notification_body(oid, refund["amount_fen"], "REFUND.SUCCESS", transaction_id=refund["payment_ref"],
                                 refund_fen=refund["amount_fen"], refund_no=refund["refund_id"])
    notified = api.client.post("/callbacks/wechat_pay", data=body, headers=PAY.sign(body))
    assert notified.status_code == 200, notified.json
    return r


@pytest.mark.parametrize("name", list(SCENES))
def test_a_refund_in_any_state_is_a_clear_answer_and_never_moves_stock(api, name):
    api.stock(10)
    oid = reach(api, name)
    status, location = where(api, oid)
    before = (on_hand(api, location), returns_of(api, oid), refunds_due(api, oid))
    r = ask_and_settle(api, oid)
    if name in REFUSED:
        assert r.status_code == 422 and r.json["message"], r.json       # not paid, or owed back already
        assert where(api, oid)[0] == status
    else:
        assert r.status_code == 202, r.json
        assert where(api, oid)[0] == AFTER[name], name
    assert (on_hand(api, location), returns_of(api, oid)) == before[:2]          # money back is not goods back


@pytest.mark.parametrize("name", ["pickup/collected", "pickup/completed"])
def test_a_refunded_pickup_handed_back_later_is_on_the_shelf_once_with_nothing_more_owed(api, name):
    api.stock(10)
    oid = reach(api, name)
    assert ask_and_settle(api, oid).status_code == 202
    assert (where(api, oid)[0], on_hand(api, "S001")) == (S.REFUNDED, 8)
    owed = refunds_due(api, oid)
    back = api.post(f"{STORE}/{oid}/return", {"reason": "unopened"}, key=POS_KEYS["S001"])
    assert back.status_code == 200, back.json                    # was 409 refunded -> returned
    assert back.json["status"] == "refunded"                     # the money was back already
    assert (on_hand(api, "S001"), returns_of(api, oid), refunds_due(api, oid)) == (10, 1, owed)
    again = api.post(f"{STORE}/{oid}/return", {"reason": "unopened"}, key=POS_KEYS["S001"])   # the till retries
    assert again.status_code == 200 and again.json["status"] == "refunded"
    assert (on_hand(api, "S001"), returns_of(api, oid), refunds_due(api, oid)) == (10, 1, owed)
    with api.ctx.reader() as uow:
        assert [t.to_status for t in orders.get(uow, oid).transitions][-3:] == ["refunded", "returned", "refunded"]
        assert [(r.status, r.cause) for r in money_owed.of_order(uow, oid)] == [("success", "asked")]


def test_a_cancelled_and_refunded_order_cannot_be_handed_back(api):
    """Its goods never left: a "return" would put units on the shelf that were never taken off."""
    api.stock(10)
    oid = reach(api, "pickup/allocated")
    assert ask_and_settle(api, oid).status_code == 202
    assert where(api, oid)[0] == S.REFUNDED and on_hand(api, "S001") == 10
    r = api.post(f"{STORE}/{oid}/return", {"reason": "x"}, key=POS_KEYS["S001"])
    assert r.status_code == 409 and on_hand(api, "S001") == 10 and returns_of(api, oid) == 0


@pytest.mark.parametrize("name", ["delivery/picked_up", "delivery/returning"])
def test_a_delivery_refunded_on_its_way_comes_back_once_and_is_refunded(api, name):
    api.stock(10)
    oid = reach(api, name)
    _, location = where(api, oid)
    assert ask_and_settle(api, oid).status_code == 202
    start, owed = on_hand(api, location), refunds_due(api, oid)
    for _ in range(2):                                   # the courier reports it twice
        with api.ctx.uow() as uow:
            courier_outcomes.failed_delivery(uow, orders.get(uow, oid, lock=True), S.RETURNED, "dada")
            uow.commit()
    assert (on_hand(api, location), returns_of(api, oid), refunds_due(api, oid)) == (start + 2, 1, owed)
    assert where(api, oid)[0] == S.REFUNDED
