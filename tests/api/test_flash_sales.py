"""Flash sales through the API: arm (ops key), the rush answered by the gate, the buyer's limit and
pace (429 with a reason), a cancelled order's unit back in the gate, and gate = ledger at the end."""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from hub import consumers, handlers
from hub.domain.flash_gate import MemoryGate
from hub.services import flash_sales, inventory, orders
from hub.storage.tables import MemberHold, OrderRow, OutboxMessage
from tests.redis_support import redis_gate
from tests.support import at

from .conftest import OPS_KEY, POS_KEYS

SALES = "/admin/api/flash-sales"


@pytest.fixture(params=["memory", "redis"])
def gated(request, api):
    """The API with the in-process gate, and with the Redis gate."""
    if request.param == "memory":
        yield api
    else:
        with redis_gate() as gate:
            api.ctx.gate = gate
            yield api


def arm(api, quota: int = 5, limit: int = 1, interval: int = 0, **extra) -> str:
    api.stock(20, locations=("S001",), skus=("TEA-001",))
    body = {"sku": "TEA-001", "location_id": "S001", "quota": quota, "per_buyer_limit": limit,
            "starts_at": at(-1).isoformat(), "ends_at": at(60).isoformat(), "min_interval_ms": interval, **extra}
    r = api.post(SALES, body, key=OPS_KEY)
    assert r.status_code == 201, r.json
    return r.json["sale_id"]


def attempt(api, sale_id: str, buyer: str, key: str | None = None, qty: int = 1):
    return api.post(f"/api/v1/flash-sales/{sale_id}/orders", {"qty": qty, "buyer": {"id": buyer}},
                    headers={"Idempotency-Key": key or uuid.uuid4().hex})


def drawn(api, sale_id: str) -> int:
    """Units the sale's orders drew from its hold."""
    with api.ctx.uow() as uow:
        return inventory.drawn_from(uow.session, sale_id)


def give_backs(api) -> None:
    """Run the give-back consumer over every order.status_changed in the outbox (as the scheduler does)."""
    with api.ctx.uow() as uow:
        events = [m.payload for m in uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.event_type == "order.status_changed")).scalars()]
    for envelope in events:
        consumers.handle(api.ctx, handlers.FLASH_SALE_GIVE_BACK, envelope)


def test_arming_needs_the_ops_key_and_valid_terms(api):
    api.stock(3, locations=("S001",), skus=("TEA-001",))
    body = {"sku": "TEA-001", "location_id": "S001", "quota": 2, "per_buyer_limit": 1,
            "starts_at": at(-1).isoformat(), "ends_at": at(60).isoformat()}
    assert api.post(SALES, body).status_code == 401                          # a channel key is not enough
    assert api.post(SALES, {**body, "quota": 0}, key=OPS_KEY).status_code == 422
    assert api.post(SALES, {**body, "ends_at": at(-2).isoformat()}, key=OPS_KEY).status_code == 422
    assert api.post(SALES, {**body, "location_id": "WH01"}, key=OPS_KEY).status_code == 422
    assert api.post(SALES, {**body, "sku": "NOPE"}, key=OPS_KEY).status_code == 422
    short = api.post(SALES, {**body, "quota": 4}, key=OPS_KEY)
    assert short.status_code == 409 and short.json["short"][0]["available"] == 3
    assert api.get(SALES, key=OPS_KEY).json["flash_sales"] == []            # nothing armed by a refusal
    ok = api.post(SALES, body, key=OPS_KEY)
    assert ok.status_code == 201 and ok.json["gate"] == {"left": 2, "held": 0, "closed": False}


def test_the_rush_sells_the_quota_and_answers_the_rest_sold_out(gated):
    sale = arm(gated, quota=5)
    answers = [attempt(gated, sale, f"buyer-{i}") for i in range(12)]
    assert [r.status_code for r in answers] == [201] * 5 + [409] * 7
    assert {r.json["error"] for r in answers[5:]} == {"sold_out"}
    assert gated.level().reserved == 5 and drawn(gated, sale) == 5
    placed = answers[0].json
    assert placed["flash_sale_id"] == sale and placed["fulfillment"]["store_id"] == "S001"


def test_a_retried_attempt_is_the_same_order(gated):
    sale = arm(gated, quota=2)
    first = attempt(gated, sale, "b1", key="same-key")
    again = attempt(gated, sale, "b1", key="same-key")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["order_id"] == again.json["order_id"]
    assert drawn(gated, sale) == 1 and gated.level().reserved == 2          # the whole quota is held


def test_over_the_limit_or_too_fast_is_429_with_the_reason(gated):
    sale = arm(gated, quota=5, limit=1, interval=2000)
    assert attempt(gated, sale, "b1").status_code == 201
    fast = attempt(gated, sale, "b1")
    assert fast.status_code == 429 and fast.json["error"] == "too_fast" and fast.headers["Retry-After"] == "1"
    gated.clock.now = at(1)
    over = attempt(gated, sale, "b1")
    assert over.status_code == 429 and over.json["error"] == "over_limit"
    assert drawn(gated, sale) == 1


def test_not_running_unknown_and_bad_input(gated):
    sale = arm(gated, quota=2)
    assert attempt(gated, "FS-NOPE", "b1").status_code == 404
    gated.clock.now = at(61)
    assert attempt(gated, sale, "b1").json["error"] == "sale_ended"
    gated.clock.now = at(0)
    no_key = gated.post(f"/api/v1/flash-sales/{sale}/orders", {"buyer": {"id": "b1"}})
    assert no_key.status_code == 400
    bad = gated.post(f"/api/v1/flash-sales/{sale}/orders", {"qty": 0, "buyer": {"id": "b1"}},
                     headers={"Idempotency-Key": "k"})
    assert bad.status_code == 422
    assert gated.ctx.gate.state(sale).left == 2 and drawn(gated, sale) == 0


@pytest.mark.parametrize(("benefit", "error"), [({"coupon_code": "CPN-100"}, "coupon_not_allowed"),
                                                ({"points": 500}, "points_not_allowed"),
                                                ({"coupon_code": "CPN-100", "points": 500}, "coupon_not_allowed")])
def test_a_coupon_or_points_on_a_flash_sale_order_is_refused_and_nothing_is_taken(gated, benefit, error):
    """The flash-sale price is the discount: a coupon or points on top is a 422 with its reason, before the
    gate — no unit taken, the buyer's pace and limit untouched, the key free for the order without them."""
    sale = arm(gated, quota=2, limit=1, interval=60_000)
    url = f"/api/v1/flash-sales/{sale}/orders"
    for _ in range(2):                                   # a retry is refused alike
        r = gated.post(url, {"qty": 1, "buyer": {"id": "b1"}, **benefit}, headers={"Idempotency-Key": "fk"})
        assert r.status_code == 422 and r.json["error"] == error, r.json
    assert gated.ctx.gate.state(sale).left == 2 and drawn(gated, sale) == 0
    with gated.ctx.reader() as uow:
        assert uow.session.query(OrderRow).count() == 0 and uow.session.query(MemberHold).count() == 0
    ok = gated.post(url, {"qty": 1, "buyer": {"id": "b1"}, "points": None}, headers={"Idempotency-Key": "fk"})
    assert ok.status_code == 201, ok.json                # neither too fast nor a conflict: nothing was counted
    assert gated.ctx.gate.state(sale).left == 1 and drawn(gated, sale) == 1


def test_a_cancelled_order_gives_its_unit_back_once(gated):
    sale = arm(gated, quota=1)
    order_id = attempt(gated, sale, "b1").json["order_id"]
    assert attempt(gated, sale, "b2").json["error"] == "sold_out"
    assert gated.post(f"/api/v1/orders/{order_id}/cancel", {}).status_code == 200
    give_backs(gated)
    give_backs(gated)                                   # redelivered: no second unit
    assert gated.ctx.gate.state(sale).left == 1
    assert attempt(gated, sale, "b2").status_code == 201
    assert attempt(gated, sale, "b3").json["error"] == "sold_out"


def test_a_store_that_ran_out_refuses_and_the_unit_goes_back(gated):
    sale = arm(gated, quota=5)
    r = gated.post("/api/v1/stores/S001/sales", {"receipt_id": "R1", "sold_at": at(0).isoformat(),
                                                 "lines": [{"sku": "TEA-001", "qty": 20}]}, key=POS_KEYS["S001"])
    assert r.status_code == 201
    refused = attempt(gated, sale, "b1")
    assert refused.status_code == 409 and refused.json["error"] == "insufficient_stock"
    assert gated.ctx.gate.state(sale).left == 5                 # the admitted unit went back


def test_end_compares_gate_and_ledger_and_gives_back_stranded_units(gated):
    sale = arm(gated, quota=4)
    kept = attempt(gated, sale, "b1").json["order_id"]
    cancelled = attempt(gated, sale, "b2").json["order_id"]
    gated.post(f"/api/v1/orders/{cancelled}/cancel", {})
    # A gateway that died between admission and commit leaves a unit held for no order.
    assert gated.ctx.gate.admit(sale, "miniprogram:lost", "miniprogram:b9", 1,
                                flash_sales.epoch_ms(at(0))) == "admitted"
    r = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY)
    assert r.status_code == 200
    result = r.json["result"]
    assert result["sold_in_ledger"] == 1 and result["held_by_gate"] == 1 and result["agree"]
    assert result["stranded_given_back"] == 2 and result["oversold"] == 0
    assert attempt(gated, sale, "b3").json["error"] == "sale_ended"
    shown = gated.get(f"{SALES}/{sale}", key=OPS_KEY).json
    assert shown["status"] == "ended" and shown["result"]["agree"]
    with gated.ctx.uow() as uow:
        assert orders.get(uow, kept).flash_sale_id == sale


def test_concurrent_rush_never_oversells(gated):
    """200 attempts from 16 threads on 10 units: 10 orders, 10 units reserved, gate and ledger agree."""
    sale = arm(gated, quota=10)
    start = threading.Barrier(16)

    def worker(n: int) -> list[int]:
        start.wait()
        return [attempt(gated, sale, f"buyer-{n}-{i}").status_code for i in range(13)]

    with ThreadPoolExecutor(16) as pool:
        codes = [c for batch in pool.map(worker, range(16)) for c in batch]
    assert codes.count(201) == 10 and codes.count(409) == len(codes) - 10
    assert gated.level().reserved == 10 and drawn(gated, sale) == 10
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json["result"]
    assert result == {**result, "sold_in_ledger": 10, "held_by_gate": 10, "oversold": 0, "agree": True,
                      "stranded_given_back": 0}


def test_a_retry_after_the_order_was_cancelled_answers_it_and_keeps_the_unit_in_the_gate(gated):
    """The cancelled order's unit went back and the gate forgot the attempt, so its retry is admitted
    anew: the answer is the cancelled order (same key, same order), and the unit goes back again."""
    sale = arm(gated, quota=2)
    first = attempt(gated, sale, "b1", key="k1")
    assert gated.post(f"/api/v1/orders/{first.json['order_id']}/cancel", {}).status_code == 200
    give_backs(gated)
    assert gated.ctx.gate.state(sale).left == 2
    again = attempt(gated, sale, "b1", key="k1")
    assert again.status_code == 200 and again.json["order_id"] == first.json["order_id"]
    assert again.json["status"] == "cancelled"
    assert gated.ctx.gate.state(sale).left == 2 and drawn(gated, sale) == 0    # the unit was not stranded
    assert attempt(gated, sale, "b2").status_code == 201 and attempt(gated, sale, "b3").status_code == 201


def lose_the_gate(api) -> None:
    """What a restart does to the gate: embedded mode's is new and empty; Redis came back without its data."""
    gate = api.ctx.gate
    if isinstance(gate, MemoryGate):
        api.ctx.gate = MemoryGate()
    else:
        for key in gate.client.scan_iter(f"{gate.prefix}*"):
            gate.client.delete(key)


def test_a_gate_that_lost_a_running_sale_learns_it_again_from_the_ledger(gated):
    """Old code: every attempt after a restart was 404 "no such flash sale" while the sale ran."""
    sale = arm(gated, quota=3, limit=1)
    first = attempt(gated, sale, "b1", key="k1")
    cancelled = attempt(gated, sale, "b2").json["order_id"]
    assert gated.post(f"/api/v1/orders/{cancelled}/cancel", {}).status_code == 200
    lose_the_gate(gated)
    again = attempt(gated, sale, "b1", key="k1")          # a retry is still the same order
    assert again.status_code == 200 and again.json["order_id"] == first.json["order_id"]
    assert gated.ctx.gate.state(sale).left == 2           # the live order's unit is held; the cancelled one's is not
    assert attempt(gated, sale, "b1").json["error"] == "over_limit"
    assert attempt(gated, sale, "b2").status_code == 201 and attempt(gated, sale, "b3").status_code == 201
    assert attempt(gated, sale, "b4").json["error"] == "sold_out"
    assert drawn(gated, sale) == 3
    lose_the_gate(gated)
    result = gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).json["result"]
    assert result == {**result, "sold_in_ledger": 3, "held_by_gate": 3, "oversold": 0, "agree": True}


def test_an_ended_sale_the_gate_lost_is_answered_ended_and_an_unknown_one_404(gated):
    sale = arm(gated, quota=2)
    assert gated.post(f"{SALES}/{sale}/end", {}, key=OPS_KEY).status_code == 200
    lose_the_gate(gated)
    assert attempt(gated, sale, "b1").json["error"] == "sale_ended"
    unknown = attempt(gated, "FS-NOPE", "b1")
    assert unknown.status_code == 404 and gated.ctx.gate.state("FS-NOPE") is None
