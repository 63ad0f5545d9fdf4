"""The store's pick (`POST /stores/{id}/orders/{id}/picked`) as a hostile till sends it: two staff picking one
order at once with different counts, a pick racing the platform's refund, odd numbers and lines. Real concurrent
requests on PostgreSQL: one pick wins whole, the other is refused (409) or is the same answer; the reservation
left is what the order still holds."""
from __future__ import annotations

from typing import Any

import pytest

from hub.services import orders
from hub.storage.tables import OrderRow
from tests.api.conftest import POS_KEYS
from tests.hostile.conftest import Live, at_once
from tests.hostile.test_meituan_pushes import mt as mt  # noqa: F401  (the platform's simulator fixture)
from tests.hostile.test_meituan_pushes import post, taken, url
from tests.hostile.test_pay_cancel_race import place, reserved, stock

S001 = "/api/v1/stores/S001/orders"


def pick(live: Live, oid: str, lines: list[dict[str, Any]], key: str = POS_KEYS["S001"]) -> Any:
    return live.post(f"{S001}/{oid}/picked", {"lines": lines}, key=key)


def state(live: Live, oid: str) -> tuple[str, list[int | None], list[int]]:
    with live.ctx.reader() as uow:
        order = orders.get(uow, oid)
        return order.status, [x.qty_picked for x in order.lines], [x.qty for x in order.lines]


def test_two_picks_of_one_order_at_once_one_wins_the_other_409_or_the_same_answer(live: Live) -> None:
    stock(live)
    for i in range(4):
        oid = place(live, f"pick-{i}")
        assert live.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": f"tx-{i}"}).status_code == 200
        answers = at_once(lambda oid=oid: pick(live, oid, [{"sku": "TEA-001", "qty_picked": 2}]),
                          lambda oid=oid: pick(live, oid, [{"sku": "TEA-001", "qty_picked": 1}]),
                          lambda oid=oid: pick(live, oid, [{"sku": "TEA-001", "qty_picked": 1}]))
        status, [picked], _ = state(live, oid)
        assert status == "ready_for_pickup" and picked in (1, 2)
        for (n, r) in zip((2, 1, 1), answers, strict=True):       # the winner's count: 200; another count: 409
            assert r.status_code == (200 if n == picked else 409), r.text
    with live.ctx.reader() as uow:
        held = sum(orders.get(uow, o.id).lines[0].qty_picked or 0
                   for o in uow.session.query(OrderRow).all())
    assert reserved(live) == held


@pytest.mark.parametrize("lines, field", [
    ([{"sku": "TEA-001", "qty_picked": 10**18}], "lines[0].qty_picked"),
    ([{"sku": "TEA-001", "qty_picked": "1e3"}], "lines[0].qty_picked"),
    ([{"sku": "TEA-001", "qty_picked": 1e3}], "lines[0].qty_picked"),
    ([{"sku": "TEA-001", "qty_picked": True}], "lines[0].qty_picked"),
    ([{"sku": "TEA-001", "qty_picked": -1}], "lines[0].qty_picked"),
    ([{"sku": "TEA-001", "qty_picked": 3}], None),                    # more than ordered
    ([{"sku": "CUP-002", "qty_picked": 1}], None),                    # not a line of the order
    ([{"sku": "TEA-001", "qty_picked": 1}, {"sku": "TEA-001", "qty_picked": 1}], None),     # named twice
])
def test_an_odd_pick_is_422_and_changes_nothing(live: Live, lines: list[dict[str, Any]], field: str | None) -> None:
    stock(live)
    oid = place(live, "odd")
    assert live.post(f"/api/v1/orders/{oid}/pay", {"payment_ref": "tx-odd"}).status_code == 200
    r = pick(live, oid, lines)
    assert r.status_code == 422 and r.json().get("field") == field, r.text
    assert state(live, oid) == ("allocated", [None], [2]) and reserved(live) == 2
    assert pick(live, oid, [], key=POS_KEYS["S002"]).status_code == 403     # another store's key


def test_a_pick_racing_the_platforms_part_refund_leaves_what_the_order_holds(live: Live, mt) -> None:  # noqa: F811
    stock(live)
    for i in range(4):
        ext = f"72{i:02d}"
        oid = taken(live, mt, ext, qty=3)
        picked, refunded = at_once(
            lambda oid=oid: pick(live, oid, []),                              # in full: whatever is on the order
            lambda ext=ext: post(live, mt.refund_params(url(live), ext, f"R-{ext}", [("TEA-001", 1)])))
        assert picked.status_code == 200 and refunded.status_code == 200, (picked.text, refunded.text)
        assert mt.refunds[f"R-{ext}"]["status"] == "agreed"
        status, [qty_picked], [qty] = state(live, oid)
        assert (qty_picked, qty) == (2, 2) and status == "ready_for_pickup"
    assert reserved(live) == 4 * 2


def test_a_pick_racing_the_platforms_whole_refund_is_one_or_the_other(live: Live, mt) -> None:  # noqa: F811
    stock(live)
    for i in range(4):
        ext = f"73{i:02d}"
        oid = taken(live, mt, ext, qty=3)
        picked, refunded = at_once(lambda oid=oid: pick(live, oid, [{"sku": "TEA-001", "qty_picked": 2}]),
                                   lambda ext=ext: post(live, mt.refund_params(url(live), ext, f"R-{ext}", None)))
        assert refunded.status_code == 200, refunded.text
        status, _, _ = state(live, oid)
        assert status in ("cancelled", "refunded"), status
        assert picked.status_code in (200, 409), picked.text
    assert reserved(live) == 0


def test_a_store_paused_from_two_tills_at_once_is_paused_once_never_409(live: Live) -> None:
    """A store with no status row yet: both inserted one, the second a key conflict (409)."""
    bodies = ({"paused": True, "reason": "lunch rush"}, {"paused": True, "reason": "short of staff"})
    for store, key in POS_KEYS.items():                      # each store's first pause: no row yet
        replies = at_once(*[lambda b=b, store=store, key=key: live.post(f"/api/v1/stores/{store}/pause", b, key=key)
                            for b in bodies])
        assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
        got = live.get(f"/api/v1/stores/{store}/status", key=key).json()
        assert got["paused"] is True and got["reason"] in ("lunch rush", "short of staff")


def test_a_pick_sent_again_after_the_platforms_part_refund_is_the_same_answer(live: Live, mt) -> None:  # noqa: F811
    stock(live)
    oid = taken(live, mt, "7300", qty=3)
    first = pick(live, oid, [{"sku": "TEA-001", "qty_picked": 3}])
    assert first.status_code == 200, first.text
    assert post(live, mt.refund_params(url(live), "7300", "R-7300", [("TEA-001", 1)])).status_code == 200
    before = state(live, oid)
    for lines in ([{"sku": "TEA-001", "qty_picked": 3}], []):        # the pick as sent, and "in full" as sent
        again = pick(live, oid, lines)
        assert again.status_code == 200, again.text
    assert state(live, oid) == before == ("ready_for_pickup", [2], [2])
    other = pick(live, oid, [{"sku": "TEA-001", "qty_picked": 1}])    # another count is still not the pick
    assert other.status_code == 409, other.text
