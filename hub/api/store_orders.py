"""The store's day over the store key: its orders to pick (every fulfilment type), picking started and done
(short lines included), and whether it takes orders (pause, capacity). The staff screen `/store` reads these."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api import schemas
from hub.api.http import ApiError, Call, Param, Route
from hub.api.views import iso
from hub.domain.model import FulfillmentType
from hub.domain.order_states import OrderStatus
from hub.services import orders, picking, store_capacity
from hub.storage.tables import OrderRow, SkuRow

S = OrderStatus
# Open for the store: still to pick, picked and waiting for the buyer or the rider.
OPEN = (S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.DISPATCHED, S.RIDER_ASSIGNED)
LISTABLE = (*OPEN, S.COLLECTED, S.PICKED_UP, S.SHIPPED, S.COMPLETED, S.CANCEL_REQUESTED, S.CANCELLED, S.REFUNDED,
            S.RETURNED)


def _view(call: Call, order: OrderRow, skus: dict[str, SkuRow]) -> dict[str, Any]:
    return {"order_id": order.id, "status": order.status, "fulfillment": {"type": order.fulfillment_type},
            "lines": [{"sku": x.sku, "name": skus[x.sku].name if x.sku in skus else x.sku, "qty": x.qty,
                       "qty_picked": x.qty_picked, "bin": skus[x.sku].bin if x.sku in skus else None}
                      for x in order.lines],
            "promised_at": iso(call, picking.promised_at(call.ctx.config, order)), "note": order.note,
            "created_at": iso(call, order.created_at), "paid_at": iso(call, order.paid_at),
            "picked_at": iso(call, order.picked_at), "picked_by": order.picked_by}


def _skus(uow: Any, rows: list[OrderRow]) -> dict[str, SkuRow]:
    codes = {x.sku for o in rows for x in o.lines}
    return {s.code: s for s in uow.session.execute(select(SkuRow).where(SkuRow.code.in_(codes))).scalars()}


def _source(call: Call) -> str:
    return f"store:{call.caller.id}"


def list_orders(call: Call) -> dict[str, Any]:
    status, kind = call.query("status"), call.query("fulfillment")
    stmt = select(OrderRow).where(OrderRow.location_id == call.caller.id, OrderRow.paid_at.is_not(None))
    if status:
        stmt = stmt.where(OrderRow.status == status)
    else:          # today's open orders, local time
        midnight = orders.local_now(call.ctx.config, call.deps.now()).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
        stmt = stmt.where(OrderRow.status.in_(OPEN), OrderRow.created_at >= midnight)
    if kind:
        stmt = stmt.where(OrderRow.fulfillment_type == kind)
    with call.ctx.reader() as uow:
        rows = list(uow.session.execute(stmt.order_by(OrderRow.created_at, OrderRow.id).limit(500)).scalars())
        skus = _skus(uow, rows)
        return {"store_id": call.caller.id, "orders": [_view(call, o, skus) for o in rows]}


def _answer(call: Call, uow: Any, order: OrderRow) -> dict[str, Any]:
    return _view(call, order, _skus(uow, [order]))


def _refusals(fn: Any) -> Any:
    """Another store's order is 403; a second, different pick 409 (a pick after cancel is app.py's 409 with the
    state: IllegalTransition)."""
    def wrapped(call: Call) -> Any:
        try:
            return fn(call)
        except picking.OtherStoresOrder as exc:
            raise ApiError(403, exc.code, str(exc)) from None
        except picking.PickConflict as exc:
            raise ApiError(409, exc.code, str(exc)) from None
    wrapped.__name__ = fn.__name__
    return wrapped


@_refusals
def start_picking(call: Call) -> dict[str, Any]:
    body = call.body()
    with call.ctx.uow() as uow:
        order = picking.start(uow, call.caller.id, call.params["order_id"], body["staff"], call.deps.now())
        uow.commit()
        return _answer(call, uow, order)


@_refusals
def picked(call: Call) -> dict[str, Any]:
    body = call.body()
    lines = [picking.Picked(x["sku"], x["qty_picked"]) for x in body["lines"]]
    with call.ctx.uow() as uow:
        order = picking.complete(uow, call.caller.id, call.params["order_id"], lines, body["staff"],
                                 call.deps.now())
        uow.commit()
        return _answer(call, uow, order)


def _status_view(call: Call, st: store_capacity.StoreStatus) -> dict[str, Any]:
    return {"store_id": st.store_id, "paused": st.paused, "paused_until": iso(call, st.paused_until),
            "reason": st.reason, "capacity": {"max_orders": st.max_orders, "window_minutes": st.window_minutes,
                                              "taken": st.taken}}


def store_status(call: Call) -> dict[str, Any]:
    with call.ctx.reader() as uow:
        return _status_view(call, store_capacity.status(uow, call.ctx.config, call.caller.id, call.deps.now()))


def pause(call: Call) -> dict[str, Any]:
    body = call.body()
    with call.ctx.uow() as uow:
        st = store_capacity.pause(uow, call.ctx.config, call.caller.id, body["paused"], body["until"],
                                  body["reason"], call.deps.now())
        uow.commit()
        return _status_view(call, st)


STORE = "/api/v1/stores/{store_id}"
ROUTES = [
    Route("GET", STORE + "/orders", list_orders, "store",
          "This store's paid orders of every fulfilment type, oldest first (default: today's open ones)",
          query=(Param("status", schemas.Str(required=False, enum=tuple(str(x) for x in LISTABLE)),
                       "one status; default: the open ones of today"),
                 Param("fulfillment", schemas.Str(required=False, enum=tuple(str(x) for x in FulfillmentType)),
                       "pickup, delivery or express")),
          responses={200: "orders, with lines (qty, qty_picked, bin), promised_at, note, picked_at, picked_by",
                     422: "unknown status or fulfilment"}),
    Route("POST", STORE + "/orders/{order_id}/picking", start_picking, "store",
          "Picking started (allocated -> picking); again is the same answer", body=schemas.PICKING,
          responses={200: "the order", 403: "another store's order", 404: "no such paid order",
                     409: "cannot be picked now (status)"}),
    Route("POST", STORE + "/orders/{order_id}/picked", picked, "store",
          "The pick: qty_picked per line (a line not named: in full). Short lines are refunded and their stock "
          "corrected; nothing picked cancels and refunds. The same pick again is the same answer",
          body=schemas.PICKED,
          responses={200: "the order", 403: "another store's order", 404: "no such paid order",
                     409: "cancelled or picked otherwise already (status)", 422: "more than ordered, negative, "
                     "or not a line of the order; nothing applied"}),
    Route("GET", STORE + "/status", store_status, "store", "Whether the store takes orders: paused, capacity",
          responses={200: "status"}),
    Route("POST", STORE + "/pause", pause, "store",
          "Pause taking orders (busy, closed now; until a time or until resumed) or resume",
          body=schemas.STORE_PAUSE, responses={200: "status", 422: "invalid body (until in the past)"}),
]
