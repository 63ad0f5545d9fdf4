"""Flash sales over HTTP: operations arm, list and end them (`/admin/api/flash-sales`, ops key); the
mini-program orders through the gate (`POST /api/v1/flash-sales/{sale_id}/orders`).

An attempt is answered by the gate before the order database is touched: sold out (409), over the
buyer's limit or too fast (429 with the reason), not running (409), its key used for another buyer or
qty (422). A coupon or points named is refused before the gate (422 `coupon_not_allowed`,
`points_not_allowed`): the sale price excludes member benefits, and nothing is taken. Only an admitted
attempt opens a unit of work, whose order draws its unit from the sale's held stock and its count (the
ledger's last word); if placing it fails, or its key's order is another request's, its unit goes back to
the gate.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api import schemas, views
from hub.api.http import Call, Param, Route, json_response
from hub.api.views import iso, order_view
from hub.domain.flash_sale import Verdict
from hub.domain.model import Buyer
from hub.services import flash_admission, flash_sales
from hub.storage.tables import FlashSaleRow

ARM = schemas.Obj(fields={
    "sku": schemas.SKU,
    "location_id": schemas.Str(max_len=32, description="a pickup store: flash-sale orders are collected there"),
    "quota": schemas.Int(minimum=1, maximum=1_000_000, description="units on sale"),
    "per_buyer_limit": schemas.Int(minimum=1, maximum=1000),
    "starts_at": schemas.Time(),
    "ends_at": schemas.Time(),
    "min_interval_ms": schemas.Int(required=False, minimum=0, maximum=3_600_000,
                                   description="a buyer's attempts at most this often (default 1000)"),
    "price_fen": schemas.Int(required=False, minimum=0, description="the sale price; the price list's if absent"),
})
FLASH_ORDER = schemas.Obj(fields={
    "qty": schemas.Int(required=False, minimum=1, maximum=1000, description="default 1"),
    "buyer": schemas.Obj(fields={"id": schemas.Str(max_len=64), "name": schemas.Str(required=False, min_len=0,
                                                                                    max_len=64),
                                 "phone": schemas.Str(required=False, min_len=0, max_len=32)}),
    # Named so that a client sending them hears why (422 coupon_not_allowed / points_not_allowed, nothing
    # taken), not just "unknown field": the sale price excludes coupons and points.
    "coupon_code": schemas.Str(required=False, max_len=64, description="not allowed: 422 coupon_not_allowed "
                               "(a flash-sale price takes no coupon)"),
    "points": schemas.Int(required=False, minimum=0, maximum=10**7, description="not allowed: 422 "
                          "points_not_allowed (a flash-sale price takes no points)"),
})

# What the gate says -> (status, error, message) for an attempt that is not admitted.
REFUSALS: dict[Verdict, tuple[int, str, str]] = {
    Verdict.SOLD_OUT: (409, "sold_out", "sold out"),
    Verdict.OVER_LIMIT: (429, "over_limit", "this buyer already holds the most this sale allows"),
    Verdict.TOO_FAST: (429, "too_fast", "too many attempts from this buyer; wait a moment"),
    Verdict.NOT_STARTED: (409, "sale_not_started", "the flash sale has not started yet"),
    Verdict.ENDED: (409, "sale_ended", "the flash sale has ended"),
    Verdict.UNKNOWN: (404, "not_found", "no such flash sale"),
    # The same key with another body is another request: refused, and no unit taken for it.
    Verdict.CONFLICT: (422, "idempotency_conflict", "this Idempotency-Key was used for another buyer or quantity"),
}


def _view(call: Call, sale: FlashSaleRow) -> dict[str, Any]:
    state = call.ctx.gate.state(sale.id)
    return {"sale_id": sale.id, "sku": sale.sku, "location_id": sale.location_id, "quota": sale.quota,
            "per_buyer_limit": sale.per_buyer_limit, "min_interval_ms": sale.min_interval_ms,
            "price_fen": sale.price_fen, "starts_at": iso(call, sale.starts_at), "ends_at": iso(call, sale.ends_at),
            "status": sale.status, "ended_at": iso(call, sale.ended_at), "result": sale.result,
            "gate": None if state is None else {"left": state.left, "held": state.taken, "closed": state.ended}}


def create(call: Call) -> Any:
    b = call.body()
    sale = flash_sales.arm(call.ctx, flash_sales.ArmSale(
        sku=b["sku"], location_id=b["location_id"], quota=b["quota"], per_buyer_limit=b["per_buyer_limit"],
        starts_at=b["starts_at"], ends_at=b["ends_at"],
        min_interval_ms=1000 if b["min_interval_ms"] is None else b["min_interval_ms"], price_fen=b["price_fen"]),
        now=call.deps.now())
    return json_response(_view(call, sale), 201, {"Location": f"/admin/api/flash-sales/{sale.id}"})


def listing(call: Call) -> dict:
    with call.ctx.uow() as uow:
        rows = uow.session.execute(select(FlashSaleRow).order_by(FlashSaleRow.created_at.desc()).limit(200))
        return {"flash_sales": [_view(call, s) for s in rows.scalars()]}


def show(call: Call) -> dict:
    with call.ctx.uow() as uow:
        return _view(call, flash_sales.get(uow, call.params["sale_id"]))


def end(call: Call) -> dict:
    call.body()
    result = flash_sales.end(call.ctx, call.params["sale_id"], call.deps.now())
    return {"sale_id": call.params["sale_id"], "status": "ended", "result": result}


def order(call: Call) -> Any:
    """One attempt in the rush: parsed here, admitted and placed by the use case (services/flash_admission.py)."""
    key = views.idempotency_key(call)
    body, sale_id = call.body(), call.params["sale_id"]
    b = body["buyer"]
    metrics = call.deps.metrics
    answer = flash_admission.attempt(
        call.ctx, flash_admission.Attempt(sale_id, call.caller.id, key, body["qty"] or 1,
                                          Buyer(b["id"], b["name"] or "", b["phone"] or ""),
                                          body["coupon_code"] or None, body["points"] or 0),
        call.deps.now(), lambda placed: order_view(call, placed),
        lambda verdict: metrics.flash_sale_admissions.labels(str(verdict)).inc())
    if answer.view is None:
        status, error, message = REFUSALS[answer.verdict]
        headers = {"Retry-After": "1"} if answer.verdict == Verdict.TOO_FAST else {}
        return json_response({"error": error, "message": message, "sale_id": sale_id}, status, headers)
    if answer.created:
        metrics.orders_placed.labels("pickup").inc()
    out = answer.view
    return json_response(out, 201 if answer.created else 200, {"Location": f"/api/v1/orders/{out['order_id']}"})


SALE = "/admin/api/flash-sales/{sale_id}"
# Reading is "admin" (the console's basic credentials too); arming and ending stay bearer-key "ops" calls, so a
# browser's remembered password cannot be made to arm a sale from another site's page.
ROUTES = [
    Route("GET", "/admin/api/flash-sales", listing, "admin", "Flash sales, newest first, with the gate's counts",
          responses={200: "flash sales"}),
    Route("POST", "/admin/api/flash-sales", create, "ops", "Arm a flash sale of a SKU at a pickup store",
          body=ARM, responses={201: "armed", 409: "the store does not hold the quota", 422: "invalid"}),
    Route("GET", SALE, show, "admin", "A flash sale with the gate's counts",
          responses={200: "the sale", 404: "unknown"}),
    Route("POST", SALE + "/end", end, "ops", "End a flash sale: close the gate, compare it with the ledger",
          body=schemas.EMPTY, responses={200: "ended, with gate and ledger counts", 404: "unknown"}),
    Route("POST", "/api/v1/flash-sales/{sale_id}/orders", order, "channel",
          "An attempt in a flash sale: admitted and placed as a pickup order, or refused by the gate",
          body=FLASH_ORDER, headers=(Param("Idempotency-Key", schemas.IDEMPOTENCY_KEY),),
          responses={201: "admitted and placed", 200: "the same attempt again: the same order",
                     404: "unknown sale", 409: "sold out, not running, or the store ran out",
                     422: "the same Idempotency-Key with another buyer or quantity, or used outside this sale; "
                          "a coupon or points named (coupon_not_allowed, points_not_allowed): nothing taken",
                     429: "over the buyer's limit or too fast (reason in `error`)",
                     503: "the gate (Redis) or the database is not reachable: retry after Retry-After"}),
]
