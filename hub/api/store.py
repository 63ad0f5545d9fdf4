"""A store's POS: its paid pickup orders, ready and collect, its sales and its counts.

Every write is one unit of work: a request with one bad line changes nothing. A wrong
pickup code is the one refusal that is committed — the attempt must count."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api import schemas
from hub.api.http import ApiError, Call, Param, Route, json_response
from hub.api.lines import line_view
from hub.api.views import iso
from hub.domain.errors import PickupCodeRejected, PickupLocked, UnknownSku
from hub.domain.limits import is_ahead
from hub.domain.model import FulfillmentType, StockCount, StockDelta
from hub.domain.order_states import OrderStatus
from hub.privacy import mask_phone
from hub.services import inventory, pickup, till_sales
from hub.storage.tables import OrderRow

S = OrderStatus
OPEN_PICKUP = (S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP)
LISTABLE = (S.ALLOCATED, S.PICKING, S.PICKED, S.READY_FOR_PICKUP, S.COLLECTED, S.COMPLETED, S.CANCELLED, S.REFUNDED,
            S.RETURNED)


def _source(call: Call) -> str:
    return f"pos:{call.caller.id}"


def _view(call: Call, order: OrderRow) -> dict:
    buyer = order.buyer or {}
    return {"order_id": order.id, "status": order.status, "total_fen": order.total_fen,
            "lines": [line_view(x) for x in order.lines],
            "buyer": {"name": buyer.get("name", ""), "phone": mask_phone(buyer.get("phone"))},
            "created_at": iso(call, order.created_at), "paid_at": iso(call, order.paid_at),
            "locked_until": iso(call, order.pickup_locked_until)}


def pickup_orders(call: Call) -> dict:
    status = call.query("status")
    wanted = [status] if status else list(OPEN_PICKUP)
    with call.ctx.reader() as uow:
        rows = uow.session.execute(
            select(OrderRow).where(OrderRow.location_id == call.caller.id,
                                   OrderRow.fulfillment_type == FulfillmentType.PICKUP,
                                   OrderRow.paid_at.is_not(None), OrderRow.status.in_(wanted))
            .order_by(OrderRow.paid_at, OrderRow.id).limit(500)).scalars()
        return {"store_id": call.caller.id, "orders": [_view(call, o) for o in rows]}


def ready(call: Call) -> dict:
    call.body()   # an action body, if any, must still be well-formed
    with call.ctx.uow() as uow:
        order = pickup.ready(uow, call.caller.id, call.params["order_id"], _source(call), call.deps.now())
        uow.commit()
        return {"order_id": order.id, "status": order.status}


def collect(call: Call) -> dict:
    code = call.body()["pickup_code"]
    with call.ctx.uow() as uow:
        try:
            order = pickup.collect(uow, call.ctx.config, call.caller.id, call.params["order_id"], code,
                                   _source(call), call.deps.now())
        except PickupCodeRejected as exc:
            raise ApiError(422, exc.code, str(exc), attempts_left=exc.attempts_left) from None
        except PickupLocked as exc:
            raise ApiError(423, exc.code, str(exc), locked_until=iso(call, exc.locked_until)) from None
        uow.commit()
        return {"order_id": order.id, "status": order.status}


def hand_back(call: Call) -> dict:
    """A store return after collection: the store confirms the goods are back on its shelf."""
    reason = call.body()["reason"]
    with call.ctx.uow() as uow:
        order = pickup.hand_back(uow, call.caller.id, call.params["order_id"], reason, _source(call), call.deps.now())
        uow.commit()
        return {"order_id": order.id, "status": order.status}


def _stock_errors(fn):
    """An unknown SKU in a stock line is the caller's mistake about this request: 422 naming it."""
    def wrapped(call: Call):
        try:
            return fn(call)
        except UnknownSku as exc:
            raise ApiError(422, exc.code, str(exc), field="lines") from None
    wrapped.__name__ = fn.__name__
    return wrapped


class _SaleOrBatch(schemas.Field):
    """One receipt, or `{receipts: [...]}` from a till that was offline or a busy store."""

    def parse(self, value: Any, path: str) -> Any:
        if isinstance(value, dict) and "receipts" in value:
            return schemas.SALE_BATCH.parse(value, path)
        return schemas.SALE.parse(value, path)

    def schema(self) -> dict[str, Any]:
        return {"oneOf": [schemas.SALE.schema(), schemas.SALE_BATCH.schema()]}


SALE_BODY = _SaleOrBatch(description="a receipt, or up to 500 of them as {receipts: [...]}")


def _receipt(raw: dict) -> till_sales.Receipt:
    return till_sales.Receipt(raw["receipt_id"], raw["sold_at"], [(x["sku"], x["qty"]) for x in raw["lines"]])


def sales(call: Call):
    body, store = call.body(), call.caller.id
    if "receipts" in body:
        return _batch(call, store, [_receipt(r) for r in body["receipts"]])
    with call.ctx.uow() as uow:
        (outcome,) = till_sales.apply_receipts(uow, call.ctx.config, store, [_receipt(body)], now=call.deps.now())
        if outcome.status == "refused":
            raise ApiError(422, outcome.code, outcome.reason,
                           field={"time_ahead": "sold_at", "receipt_conflict": "receipt_id"}.get(outcome.code, "lines"))
        uow.commit()
    applied = sum(1 for r in outcome.lines if r["applied"])
    if applied:
        call.deps.metrics.stock_events.labels("pos", "delta").inc(applied)
    duplicate = outcome.status == "duplicate"
    return json_response({"receipt_id": body["receipt_id"], "duplicate": duplicate, "lines": outcome.lines},
                         200 if duplicate else 201)


def _batch(call: Call, store: str, receipts: list[till_sales.Receipt]) -> dict:
    """Many receipts in one transaction, answered per receipt."""
    with call.ctx.uow() as uow:
        try:
            outcomes = till_sales.apply_receipts(uow, call.ctx.config, store, receipts, now=call.deps.now())
        except till_sales.ReceiptConflict as exc:
            raise ApiError(422, exc.code, str(exc), field=f"receipts[{exc.index}].receipt_id") from None
        uow.commit()
    applied = sum(1 for o in outcomes for line in o.lines if line["applied"])
    if applied:
        call.deps.metrics.stock_events.labels("pos", "delta").inc(applied)
    tally = {k: sum(1 for o in outcomes if o.status == k) for k in ("applied", "duplicate", "refused")}
    return {**tally, "receipts": [{"receipt_id": o.receipt_id, "status": o.status,
                                   **({"reason": o.reason} if o.reason else {}),
                                   **({"code": o.code} if o.code else {}), "lines": o.lines}
                                  for o in outcomes]}


@_stock_errors
def count(call: Call) -> dict:
    body, store = call.body(), call.caller.id
    seen: set[str] = set()
    for i, line in enumerate(body["lines"]):
        if line["sku"] in seen:
            raise schemas.invalid(f"lines[{i}].sku", f"{line['sku']} is counted twice")
        seen.add(line["sku"])
    now = call.deps.now()
    if is_ahead(body["counted_at"], now):     # a till with a wrong clock must not freeze the ledger
        raise ApiError(422, "time_ahead", "counted_at is more than 5 minutes ahead of the hub's clock",
                       field="counted_at")
    count_id = body["count_id"] or body["counted_at"].isoformat()
    results = []
    with call.ctx.uow() as uow:
        for line in body["lines"]:
            r = inventory.apply_count(uow, StockCount(_source(call), f"count:{count_id}", line["sku"], store,
                                                      line["on_hand"], body["counted_at"]), now)
            results.append({"sku": line["sku"], "applied": r.applied, "duplicate": r.duplicate,
                            "on_hand": r.on_hand, "note": r.reason})
        uow.commit()
    applied = sum(1 for r in results if r["applied"])
    if applied:
        call.deps.metrics.stock_events.labels("pos", "count").inc(applied)
    return {"counted_at": iso(call, body["counted_at"]), "lines": results}


@_stock_errors
def inventory_changes(call: Call) -> dict:
    """The POS's own inventory webhook for this store: its adjustments and counts, each applied once.
    The connector maps the POS's format and refuses the whole batch if one change is bad (422)."""
    entries = call.ctx.connectors.pos().parse_inventory_changes(call.body(), call.caller.id)
    results = []
    with call.ctx.uow() as uow:
        for e in entries:
            now = call.deps.now()      # a change dated ahead of it: 422 time_ahead, nothing applied
            r = inventory.apply_delta(uow, e, now) if isinstance(e, StockDelta) else inventory.apply_count(uow, e, now)
            results.append({"sku": e.sku, "change_id": e.external_id, "applied": r.applied,
                            "duplicate": r.duplicate, "on_hand": r.on_hand, "note": r.reason})
        uow.commit()
    return {"changes": results}


STORE = "/api/v1/stores/{store_id}"
ROUTES = [
    Route("GET", STORE + "/pickup-orders", pickup_orders, "store", "This store's paid pickup orders",
          query=(Param("status", schemas.Str(required=False, enum=tuple(str(x) for x in LISTABLE)),
                       "default: allocated and ready_for_pickup"),),
          responses={200: "orders", 422: "unknown status"}),
    Route("POST", STORE + "/pickup-orders/{order_id}/ready", ready, "store", "Mark a pickup order ready",
          body=schemas.EMPTY, responses={200: "ready", 404: "not this store's", 409: "illegal transition"}),
    Route("POST", STORE + "/pickup-orders/{order_id}/collect", collect, "store",
          "Hand over against the pickup code (collected, then completed)", body=schemas.COLLECT,
          responses={200: "completed", 409: "not ready", 422: "wrong code (attempts_left)", 423: "locked"}),
    Route("POST", STORE + "/pickup-orders/{order_id}/return", hand_back, "store",
          "Goods handed back after collection, confirmed by the store: back in its stock, refund due",
          body=schemas.STORE_RETURN, responses={200: "returned (again: unchanged)", 404: "not this store's",
                                                409: "not collected yet", 422: "invalid body"}),
    Route("POST", STORE + "/sales", sales, "store",
          "A POS receipt, or {receipts: [...]} (up to 500): stock deltas, once per receipt_id",
          body=SALE_BODY, responses={201: "applied", 200: "the same receipt again (duplicate); for a batch, "
                                     "each receipt's outcome: applied, duplicate, or refused with the reason",
                                     422: "invalid (time_ahead: sold_at ahead of the hub's clock; receipt_conflict: "
                                          "the receipt id held with other lines or another time), nothing applied"}),
    Route("POST", STORE + "/inventory-changes", inventory_changes, "store",
          "The POS's inventory webhook (its own format): adjustments and counts, once per change id",
          responses={200: "applied (or already seen)",
                     422: "a change does not map or is dated ahead of the hub's clock; nothing applied"}),
    Route("PUT", STORE + "/stock", count, "store", "A stock count: absolute on-hand, if newer than the last",
          body=schemas.COUNT, responses={200: "applied (or stale, per line)",
                                         422: "invalid (time_ahead: counted_at ahead of the hub's clock), "
                                              "nothing applied"}),
]
