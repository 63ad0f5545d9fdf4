"""A pick and a cancel of the same order sent at once (real concurrent requests on PostgreSQL): serialised on
the order's row, one wins and the other is refused whole — never a half-applied pick."""
from __future__ import annotations

from hub.services import money_owed, orders
from tests.api.conftest import POS_KEYS
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_pay_cancel_race import place, reserved, stock


def test_a_pick_and_a_cancel_at_once_one_wins_nothing_half_applied(live: Live) -> None:
    stock(live)
    for i in range(4):
        oid = place(live, f"race-{i}")
        assert live.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": f"tx-{i}"}).status_code == 200
        pick, cancel = at_once(
            lambda oid=oid: live.post(f"/api/v1/stores/S001/orders/{oid}/picked",
                                      {"lines": [{"sku": "TEA-001", "qty_picked": 1}]}, key=POS_KEYS["S001"]),
            lambda oid=oid: live.post(f"/api/v1/orders/{oid}/cancel", {}))
        with live.ctx.reader() as uow:
            order = orders.get(uow, oid)
            owed = sorted(r.amount_fen for r in money_owed.of_order(uow, oid))
            status, picked = order.status, [x.qty_picked for x in order.lines]
        if status == "cancelled" and pick.status_code == 409:       # the cancel first: the pick refused whole
            assert picked == [None] and owed == [order.total_fen]
        else:                                                       # the pick first, then the cancel
            assert pick.status_code == 200 and picked == [1]
            assert status == "cancelled" and sum(owed) == order.total_fen and len(owed) == 2
        assert cancel.status_code == 200
    assert reserved(live) == 0
