"""Issue 22: three couriers (Dada, SF 同城, 闪送) against their simulators — the store's rule choosing among them,
escalation when no rider accepts (a bounded tip, then the next courier, express or an operator; time moved by the
test, never slept), a cancel the courier refuses, a store no courier can serve, and a callback from a courier that
no longer holds the order's booking. SQLite and PostgreSQL (the `flow` fixture)."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from werkzeug.test import Client

from hub import consumers, handlers
from hub.api.app import build_api
from hub.bootstrap import HubContext
from hub.config import EscalationPolicy
from hub.flows.escalation import escalate_due
from hub.services import orders, picking
from hub.storage.tables import DeadLetter, Shipment, utcnow
from sandbox.shansong import shansong_sign

from .conftest import NEAR_S001, Flow

THREE = ["local_delivery", "sf_same_city", "shansong"]


def store(flow: Flow, *, couriers: list[str], rule: str = "preference", **policy) -> Flow:
    """The flow with S001 served by `couriers` under `rule`, and the escalation policy given (if any)."""
    cfg = flow.ctx.config
    changes = {"couriers": couriers, "courier_rule": rule,
               "escalation": EscalationPolicy(**policy) if policy else None}
    locations = [loc.model_copy(update=changes) if loc.id == "S001" else loc for loc in cfg.locations]
    ctx = HubContext(cfg.model_copy(update={"locations": locations}), flow.ctx.engine, flow.ctx.connector_factory)
    return Flow(ctx, flow.sandbox)


def dispatch(flow: Flow) -> str:
    """A delivery order from S001 (which books at payment), its rider booked."""
    order_id = flow.place("delivery", [("POT-003", 1, 36000)], address=NEAR_S001, key=f"esc-{time.time_ns()}")
    flow.pay(order_id)
    book(flow, order_id)
    return order_id


def pick_it(flow: Flow, order_id: str) -> None:
    """S001's staff pick the order whole."""
    with flow.ctx.uow() as uow:
        picking.complete(uow, "S001", order_id, [picking.Picked("POT-003", 1)], "Wang", utcnow())
        uow.commit()


def book(flow: Flow, order_id: str) -> list:
    return flow.deliver(handlers.DELIVERY_TO_COURIER, "order.status_changed", order_id=order_id, to="allocated")


def shipments(flow: Flow, order_id: str) -> list[Shipment]:
    with flow.ctx.uow() as uow:
        rows = list(uow.session.execute(select(Shipment).where(Shipment.order_id == order_id,
                                                               Shipment.status != "quoted")
                                        .order_by(Shipment.id)).scalars())
        uow.session.expunge_all()
        return rows


def history(flow: Flow, order_id: str) -> list[str]:
    with flow.ctx.uow() as uow:
        return [t.detail or "" for t in orders.get(uow, order_id).transitions]


def active(flow: Flow, order_id: str) -> Shipment:
    (row,) = [s for s in shipments(flow, order_id) if s.active]
    return row


# -- the store's rule among three couriers ------------------------------------------------------------

@pytest.mark.parametrize("rule, couriers, carrier, fee", [
    ("cheapest", THREE, "shansong", 300),            # 闪送 quotes 3 yuan, Dada 6, SF 9
    ("fastest", THREE, "sf_same_city", 900),         # only SF promises a pickup time
    ("preference", ["shansong", "sf_same_city", "local_delivery"], "shansong", 300),
])
def test_the_stores_rule_chooses_among_three_couriers(flow, rule, couriers, carrier, fee):
    flow.sandbox.shansong.base_fee_fen = 300
    f = store(flow, couriers=couriers, rule=rule)
    order_id = dispatch(f)
    (row,) = shipments(f, order_id)
    assert (row.carrier, row.fee_fen, row.active, f.order(order_id).status) == (carrier, fee, True, "dispatched")
    placed = {"shansong": [o.order_no for o in flow.sandbox.shansong.orders.values() if o.placed],
              "sf_same_city": list(flow.sandbox.sf_same_city.orders),
              "local_delivery": [d for d, x in flow.sandbox.local_delivery.deliveries.items() if x.booked]}
    assert [name for name, booked in placed.items() if order_id in booked] == [carrier]     # one rider, never two


# -- escalation ---------------------------------------------------------------------------------------

def test_no_rider_gets_a_bounded_tip_then_the_next_courier(flow):
    f = store(flow, couriers=THREE, after_minutes=10, tip_fen=200, max_tip_fen=300, then="next_courier")
    order_id = dispatch(f)
    dada = flow.sandbox.local_delivery
    t0 = utcnow()
    assert escalate_due(f.ctx, t0 + timedelta(minutes=5)) == []                   # not yet due
    assert escalate_due(f.ctx, t0 + timedelta(minutes=11)) == [order_id]
    assert (active(f, order_id).tip_fen, str(dada.deliveries[order_id].tips)) == (200, "2.0")
    assert escalate_due(f.ctx, t0 + timedelta(minutes=12)) == []                  # a step per after_minutes
    assert escalate_due(f.ctx, t0 + timedelta(minutes=22)) == [order_id]
    assert (active(f, order_id).tip_fen, str(dada.deliveries[order_id].tips)) == (300, "3.0")   # bounded
    assert escalate_due(f.ctx, t0 + timedelta(minutes=33)) == [order_id]          # tips spent: switched
    first = shipments(f, order_id)[0]
    assert (first.active, first.status, first.escalation, first.penalty_fen) == (False, "cancelled", "switched", 0)
    assert dada.status_of(order_id) == 5 and f.order(order_id).status == "allocated"
    book(f, order_id)
    now = active(f, order_id)
    assert (now.carrier, now.tip_fen, f.order(order_id).status) == ("sf_same_city", 0, "dispatched")
    assert len(shipments(f, order_id)) == 2                                       # counted towards the cap
    assert any("re-dispatched to the next courier" in d for d in history(f, order_id))
    console = Client(build_api(f.ctx)).get(f"/admin/api/orders/{order_id}",
                                           headers={"Authorization": f"Bearer {f.ctx.config.hub.ops_key}"}).json
    shown = [(s["carrier"], s["status"], s["fee_fen"], s["tip_fen"], s["penalty_fen"], s["escalation"])
             for s in console["shipments"] if s["status"] != "quoted"]
    assert shown == [("local_delivery", "cancelled", 600, 300, 0, "switched"),
                     ("sf_same_city", "booked", 900, 0, 0, None)]


def test_a_rider_who_accepted_unheard_is_applied_not_escalated(flow):
    f = store(flow, couriers=["sf_same_city", "local_delivery"], after_minutes=10, then="next_courier")
    order_id = dispatch(f)
    flow.sandbox.sf_same_city.advance(order_id, 10, push=False)                   # its callback never came
    assert escalate_due(f.ctx, utcnow() + timedelta(minutes=11)) == []
    assert (active(f, order_id).carrier, f.order(order_id).status) == ("sf_same_city", "rider_assigned")
    assert order_id not in flow.sandbox.local_delivery.deliveries


def test_a_cancel_the_courier_refuses_switches_nothing_and_is_recorded(flow):
    f = store(flow, couriers=["sf_same_city", "local_delivery"], after_minutes=10, then="next_courier")
    order_id = dispatch(f)
    flow.sandbox.sf_same_city.refuse_cancel = True                                # as SF does after pickup (2012)
    t0 = utcnow()
    assert escalate_due(f.ctx, t0 + timedelta(minutes=11)) == [order_id]
    row = active(f, order_id)
    assert (row.carrier, row.escalation, f.order(order_id).status) == ("sf_same_city", "cancel_refused", "dispatched")
    assert "2012" in row.escalation_detail
    assert flow.sandbox.sf_same_city.orders[order_id].status == 1
    assert order_id not in flow.sandbox.local_delivery.deliveries                 # one rider, never two
    assert escalate_due(f.ctx, t0 + timedelta(minutes=40)) == []                  # left to an operator
    (letter,) = letters_of(f, order_id)
    assert consumers.replay(f.ctx, letter.id, handlers.BY_NAME) is False           # still refused: kept parked
    (kept,) = letters_of(f, order_id)
    assert kept.id == letter.id and "would not cancel" in kept.error
    flow.sandbox.sf_same_city.refuse_cancel = False
    assert consumers.replay(f.ctx, letter.id, handlers.BY_NAME) is True
    assert (f.order(order_id).status, flow.sandbox.sf_same_city.orders[order_id].status) == ("allocated", 2)


def test_after_the_last_courier_the_policy_sends_it_by_express(flow):
    f = store(flow, couriers=["shansong", "express"], after_minutes=10, then="next_courier", last="express")
    order_id = dispatch(f)
    assert escalate_due(f.ctx, utcnow() + timedelta(minutes=11)) == [order_id]
    first = shipments(f, order_id)[0]
    assert (first.active, first.escalation, flow.sandbox.shansong.latest(order_id).status) == (False, "express", 60)
    order = f.order(order_id)
    assert (order.fulfillment_type, order.status) == ("express", "allocated")
    assert book(f, order_id) and shipments(f, order_id)[0].active is False       # no rider booked again
    f.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="allocated",
              fulfillment="express")
    assert not [s for s in shipments(f, order_id) if s.active]                   # the store's parcel waits ...
    pick_it(f, order_id)                                                          # ... for its pick
    f.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="picked",
              fulfillment="express")
    shipped = active(f, order_id)
    assert (shipped.kind, f.order(order_id).status) == ("express", "shipped")


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def letters_of(flow: Flow, order_id: str) -> list[DeadLetter]:
    return [d for d in consumers.dead_letters(flow.ctx) if d.payload["data"]["order_id"] == order_id]


def console(flow: Flow, method: str, path: str) -> dict:
    headers = {"Authorization": f"Bearer {flow.ctx.config.hub.ops_key}"}
    return Client(build_api(flow.ctx)).open("/admin/api" + path, method=method, headers=headers).json


def test_a_spent_escalation_is_left_to_an_operator_whose_replay_books_again(flow):
    f = store(flow, couriers=["local_delivery"], after_minutes=5, tip_fen=100, max_tip_fen=100, then="operator")
    order_id = dispatch(f)
    t0 = utcnow()
    tips, operator = (counted("hub_delivery_escalations_total", courier="local_delivery", step=s)
                      for s in ("tip", "operator"))
    assert escalate_due(f.ctx, t0 + timedelta(minutes=6)) == [order_id]           # the one tip
    assert escalate_due(f.ctx, t0 + timedelta(minutes=12)) == [order_id]
    row = active(f, order_id)
    assert (row.escalation, row.tip_fen, f.order(order_id).status) == ("operator", 100, "dispatched")
    assert flow.sandbox.local_delivery.status_of(order_id) == 1                   # the booking stays
    assert escalate_due(f.ctx, t0 + timedelta(minutes=30)) == []
    assert counted("hub_delivery_escalations_total", courier="local_delivery", step="tip") == tips + 1
    assert counted("hub_delivery_escalations_total", courier="local_delivery", step="operator") == operator + 1
    # where operators look for work: a dead letter whose replay re-dispatches the delivery
    (letter,) = letters_of(f, order_id)
    listed = console(f, "GET", "/dead-letters?target=operator_rebook")["dead_letters"]
    assert [x["id"] for x in listed if x["id"] == letter.id] and "Replay cancels" in letter.error
    assert console(f, "POST", f"/dead-letters/{letter.id}/replay")["replayed"] is True
    assert letters_of(f, order_id) == []
    first = shipments(f, order_id)[0]
    assert (first.active, first.status, first.escalation) == (False, "cancelled", "operator_rebook")
    assert flow.sandbox.local_delivery.status_of(order_id) == 5 and f.order(order_id).status == "allocated"
    book(f, order_id)                                                             # every courier asked again
    again = active(f, order_id)
    assert (again.carrier, again.id != first.id, f.order(order_id).status) == ("local_delivery", True, "dispatched")
    assert flow.sandbox.local_delivery.status_of(order_id) == 1                   # one live booking, re-added


def test_a_replayed_operator_step_of_an_order_that_moved_on_does_nothing(flow):
    f = store(flow, couriers=["sf_same_city"], after_minutes=5, then="operator")
    order_id = dispatch(f)
    assert escalate_due(f.ctx, utcnow() + timedelta(minutes=6)) == [order_id]
    (letter,) = letters_of(f, order_id)
    flow.sandbox.sf_same_city.advance(order_id, 10, push=False)                   # a rider took it after all
    assert consumers.replay(f.ctx, letter.id, handlers.BY_NAME) is True
    assert (f.order(order_id).status, len(shipments(f, order_id))) == ("rider_assigned", 1)
    assert flow.sandbox.sf_same_city.orders[order_id].status == 10                # not cancelled


# -- a store no courier can serve ------------------------------------------------------------------------

def refuse_everything(flow: Flow) -> None:
    flow.sandbox.shansong.no_capacity = True                                      # 20030 no rider in the area
    sf = flow.sandbox.sf_same_city
    sf.faults.fail_next, sf.faults.error_status = 50, 200
    sf.faults.only_paths = ("/open/api/external/precreateorder",)                # its quote refused, 2001
    sf.faults.error_body = {"error_code": 2001, "error_msg": "店铺不存在", "error_data": None, "result": None}


def test_a_store_no_courier_takes_sends_it_by_express_when_its_policy_says(flow):
    f = store(flow, couriers=["sf_same_city", "shansong", "express"], after_minutes=10, last="express")
    refuse_everything(flow)
    order_id = dispatch(f)
    order = f.order(order_id)
    assert (order.fulfillment_type, order.status, shipments(f, order_id)) == ("express", "allocated", [])
    pick_it(f, order_id)                                                          # a store's parcel: once picked
    f.deliver(handlers.EXPRESS_WAYBILL, "order.status_changed", order_id=order_id, to="picked",
              fulfillment="express")
    assert (active(f, order_id).kind, f.order(order_id).status) == ("express", "shipped")


def test_a_store_no_courier_takes_is_parked_for_an_operator_when_its_policy_says(flow):
    f = store(flow, couriers=["sf_same_city", "shansong"], after_minutes=10, last="operator")
    refuse_everything(flow)
    order_id = f.place("delivery", [("POT-003", 1, 36000)], address=NEAR_S001, key=f"esc-{time.time_ns()}")
    f.pay(order_id)
    outcomes = book(f, order_id)
    assert [o.status for o in outcomes] == ["parked"] and "operator" in outcomes[0].error
    order = f.order(order_id)
    assert (order.fulfillment_type, order.status, shipments(f, order_id)) == ("delivery", "allocated", [])


# -- 闪送 callbacks through the hub ----------------------------------------------------------------------

def callback(flow: Flow, notify: dict, sign: str | None = None) -> int:
    sim = flow.sandbox.shansong
    form = {"clientId": sim.client_id, "shopId": sim.shop_id, "timestamp": str(int(time.time() * 1000)),
            "data": json.dumps(notify, ensure_ascii=False)}
    form["sign"] = sign or shansong_sign(form, sim.app_secret)
    return Client(build_api(flow.ctx)).post("/callbacks/shansong", data=form).status_code


def notify(iss_no: str, order_id: str, status: int, sub: int = 1) -> dict:
    return {"issOrderNo": iss_no, "orderNo": order_id, "status": status, "subStatus": sub,
            "statusChangeTime": "2026-01-01 10:00:00", "courier": {"name": "闪送员王", "mobile": "13633334444"}}


def test_a_shansong_callback_is_a_claim_its_order_info_confirms(flow):
    f = store(flow, couriers=["shansong"])
    order_id = dispatch(f)
    no = active(f, order_id).shipment_ref
    assert callback(f, notify(no, order_id, 30), sign="F" * 32) == 401            # forged: refused
    assert f.order(order_id).status == "dispatched"
    assert callback(f, notify(no, order_id, 40)) == 200                          # signed, but not what it is
    assert f.order(order_id).status == "dispatched"
    flow.sandbox.shansong.advance(no, 30, push=False)
    assert callback(f, notify(no, order_id, 30)) == 200
    assert (f.order(order_id).status, active(f, order_id).rider_phone) == ("rider_assigned", "13633334444")


def test_a_callback_from_the_courier_switched_away_from_changes_nothing(flow):
    f = store(flow, couriers=["shansong", "local_delivery"], after_minutes=10, then="next_courier")
    order_id = dispatch(f)
    old = active(f, order_id).shipment_ref
    assert escalate_due(f.ctx, utcnow() + timedelta(minutes=11)) == [order_id]
    book(f, order_id)
    assert active(f, order_id).carrier == "local_delivery"
    for status in (30, 40, 50):                                                   # genuine, signed, stale
        assert callback(f, notify(old, order_id, status)) == 200
    assert (f.order(order_id).status, active(f, order_id).carrier) == ("dispatched", "local_delivery")
    assert [s.status for s in shipments(f, order_id)] == ["cancelled", "booked"]


def test_two_schedulers_never_take_the_same_step(flow):
    from hub.flows.escalation import _claim
    f = store(flow, couriers=["local_delivery"], after_minutes=10, tip_fen=100, max_tip_fen=500)
    row = active(f, dispatch(f))
    t = utcnow() + timedelta(minutes=11)
    assert _claim(f.ctx, row.id, None, t) is True
    assert _claim(f.ctx, row.id, None, t) is False          # the other read the same state: it takes nothing
    assert _claim(f.ctx, row.id, t, t + timedelta(minutes=10)) is True


@pytest.mark.parametrize("data", ["not json", "[1, 2]", json.dumps({"issOrderNo": "X"}),
                                  json.dumps({"issOrderNo": "X", "orderNo": "Y", "status": 77, "subStatus": 1,
                                              "statusChangeTime": "2026-01-01 10:00:00"}),
                                  json.dumps({"issOrderNo": "X", "orderNo": "Y", "status": 30,
                                              "statusChangeTime": "yesterday"})])
def test_a_signed_shansong_callback_that_does_not_map_is_a_4xx(flow, data):
    sim = flow.sandbox.shansong
    form = {"clientId": sim.client_id, "shopId": sim.shop_id, "timestamp": "1", "data": data}
    form["sign"] = shansong_sign(form, sim.app_secret)
    status = Client(build_api(flow.ctx)).post("/callbacks/shansong", data=form).status_code
    assert 400 <= status < 500


def test_a_cancel_penalty_the_courier_kept_is_recorded_and_counted(flow):
    from hub.flows.delivery import cancel_rider
    from sandbox.shansong import PENALTY_FEN
    f = store(flow, couriers=["shansong"])
    order_id = dispatch(f)
    flow.sandbox.shansong.advance(active(f, order_id).shipment_ref, 30, push=False)   # a rider is on the way
    before = counted("hub_courier_cancel_penalty_fen_total", courier="shansong")
    cancel_rider(f.ctx, order_id, "order cancelled")
    (row,) = shipments(f, order_id)
    assert (row.active, row.status, row.penalty_fen) == (False, "cancelled", PENALTY_FEN) and PENALTY_FEN > 0
    assert counted("hub_courier_cancel_penalty_fen_total", courier="shansong") == before + PENALTY_FEN
