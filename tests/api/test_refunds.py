"""After-sales over the API: `POST /api/v1/orders/{id}/refund` (channel or operations key, Idempotency-Key),
the order's `refunds`, `/admin/api/refunds` and `hub_refunds{status}` in /metrics. What the platform
then does with the refund is tests/flows/test_refunds.py's business."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from hub.storage.tables import OutboxMessage, utcnow
from sandbox.credentials import sandbox_env
from sandbox.wechat_pay import WeChatPaySimulator

from .conftest import CHANNEL_KEY, OPS_KEY


def paid_order(api, ref: str = "4200000100") -> tuple[str, int]:
    api.stock(10)
    oid = api.order()                   # 2 x TEA-001
    api.pay(oid, ref)
    return oid, api.get(f"/api/v1/orders/{oid}").json["total_fen"]


def refund(api, oid: str, body: dict | None = None, key: str | None = "rk-1", caller: str = CHANNEL_KEY):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"/api/v1/orders/{oid}/refund", body if body is not None else {}, key=caller, headers=headers)


def due_events(api) -> list[dict]:
    with api.ctx.uow() as uow:
        rows = uow.session.execute(select(OutboxMessage).where(OutboxMessage.event_type == "order.refund_due")
                                   .order_by(OutboxMessage.id)).scalars()
        return [r.payload["data"] for r in rows]


def test_a_partial_refund_is_recorded_asked_for_and_leaves_the_order_alone(api):
    oid, total = paid_order(api)
    r = refund(api, oid, {"amount_fen": 100, "reason": "one cup arrived chipped"})
    assert r.status_code == 202, r.json
    assert r.json["status"] == "allocated"
    assert (r.json["refund"]["amount_fen"], r.json["refund"]["status"], r.json["refund"]["reason"]) == (
        100, "requested", "one cup arrived chipped")
    [due] = due_events(api)
    assert due == {"order_id": oid, "payment_ref": "4200000100", "amount_fen": 100,
                   "reason": "one cup arrived chipped", "refund_no": r.json["refund"]["refund_id"]}
    order = api.get(f"/api/v1/orders/{oid}").json
    assert order["status"] == "allocated" and [x["amount_fen"] for x in order["refunds"]] == [100]
    assert api.level().reserved == 2


def test_the_same_key_is_the_same_refund_and_another_amount_with_it_is_refused(api):
    oid, _ = paid_order(api)
    first = refund(api, oid, {"amount_fen": 300})
    again = refund(api, oid, {"amount_fen": 300})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["refund"]["refund_id"] == first.json["refund"]["refund_id"]
    other = refund(api, oid, {"amount_fen": 400})
    assert other.status_code == 422 and other.json["error"] == "idempotency_conflict"
    assert len(due_events(api)) == 1


def test_omitted_amount_is_what_is_left_and_nothing_more_can_be_asked(api):
    oid, total = paid_order(api)
    assert refund(api, oid, {"amount_fen": 1000}, key="a").status_code == 202
    whole = refund(api, oid, {}, key="b")
    assert whole.status_code == 202 and whole.json["refund"]["amount_fen"] == total - 1000
    more = refund(api, oid, {"amount_fen": 1}, key="c")
    assert more.status_code == 422 and "0 fen left" in more.json["message"]
    nothing = refund(api, oid, {}, key="d")
    assert nothing.status_code == 422 and "nothing left" in nothing.json["message"]
    assert [x["amount_fen"] for x in api.get(f"/api/v1/orders/{oid}").json["refunds"]] == [1000, total - 1000]


def test_bad_refund_requests_are_4xx_and_change_nothing(api):
    oid, total = paid_order(api)
    unpaid = api.order(key="unpaid")
    cases = [
        (refund(api, oid, key=None), 400, "idempotency_key_required"),
        (refund(api, oid, {"amount_fen": 0}), 422, "validation_failed"),
        (refund(api, oid, {"amount_fen": -5}), 422, "validation_failed"),
        (refund(api, oid, {"amount_fen": 1.5}), 422, "validation_failed"),
        (refund(api, oid, {"amount_fen": total + 1}), 422, "bad_input"),
        (refund(api, oid, {"reason": "x" * 81}), 422, "validation_failed"),
        (refund(api, oid, {"fen": 100}), 422, "validation_failed"),
        (refund(api, unpaid, {}), 422, "bad_input"),
        (refund(api, "O-NOPE", {}), 404, "not_found"),
        (refund(api, oid, {}, caller="wrong-key-000"), 401, "unauthorized"),
    ]
    for r, status, error in cases:
        assert (r.status_code, r.json["error"]) == (status, error), r.json
    assert due_events(api) == [] and api.get(f"/api/v1/orders/{oid}").json["refunds"] == []


def test_another_channels_order_is_not_found_and_operations_may_refund_any(api):
    oid, total = paid_order(api)
    with api.ctx.uow() as uow:
        from hub.services import orders
        orders.get(uow, oid).channel = "other_shop"
        uow.commit()
    assert refund(api, oid, {}).status_code == 404
    r = refund(api, oid, {"reason": "goodwill"}, caller=OPS_KEY)
    assert r.status_code == 202 and r.json["refund"]["amount_fen"] == total


def test_operations_see_refunds_needing_them_and_the_metric_counts_by_status(api):
    oid, _ = paid_order(api)
    refund(api, oid, {"amount_fen": 100})
    pay = WeChatPaySimulator.from_env(sandbox_env())
    body = pay.notification_body(oid, 25600, "REFUND.ABNORMAL", transaction_id="4200000100", refund_fen=200,
                                 refund_no=f"R{oid}-AB")
    assert api.client.post("/callbacks/wechat_pay", data=body, headers=pay.sign(body)).status_code == 200
    listed = api.get("/admin/api/refunds", key=OPS_KEY).json
    assert [(x["refund_id"], x["status"]) for x in listed["refunds"]] == [(f"R{oid}-AB", "abnormal")]
    requested = api.get("/admin/api/refunds?status=requested", key=OPS_KEY).json["refunds"]
    assert [x["amount_fen"] for x in requested] == [100]
    assert api.get("/admin/api/refunds?status=lost", key=OPS_KEY).status_code == 422
    assert api.get("/admin/api/refunds", key=CHANNEL_KEY).status_code == 401
    text = api.get("/metrics", key=OPS_KEY).get_data(as_text=True)
    found = dict(re.findall(r'^hub_refunds\{status="(\w+)"\} (\S+)$', text, re.M))
    assert (found["requested"], found["abnormal"], found["success"]) == ("1.0", "1.0", "0.0")
    assert "hub_refunds_due" not in text
    detail = api.get(f"/admin/api/orders/{oid}", key=OPS_KEY).json
    assert sorted(x["status"] for x in detail["refunds"]) == ["abnormal", "requested"]


def test_a_refund_pending_for_long_is_shown_to_operations(api):
    oid, _ = paid_order(api)
    refund(api, oid, {"amount_fen": 100})
    assert api.get("/admin/api/refunds", key=OPS_KEY).json["refunds"] == []        # just asked: not yet
    api.clock.now = utcnow() + timedelta(minutes=31)
    [stale] = api.get("/admin/api/refunds", key=OPS_KEY).json["refunds"]
    assert (stale["order_id"], stale["amount_fen"], stale["status"]) == (oid, 100, "requested")
