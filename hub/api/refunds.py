"""After-sales (售后): ask for a refund of an order (the buyer's channel, or operations), and the
refunds operations must look at (`/admin/api/refunds`: abnormal, closed, refused — or any status).

The refund is recorded and asked of the payment platform by `flows/refunds.py`; the order shows it
as pending until the platform says the money went back."""
from __future__ import annotations

from typing import Any

from hub.api import schemas
from hub.api.http import Call, Param, Route, json_response
from hub.api.views import idempotency_key, iso, refund_list
from hub.domain.errors import NotFound
from hub.domain.refunds import NEEDS_OPERATOR, RefundStatus
from hub.services import orders, refunds
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork


def _order(call: Call, uow: UnitOfWork) -> OrderRow:
    order = orders.get(uow, call.params["order_id"], lock=True)
    if call.caller.kind == "channel" and order.channel != call.caller.id:
        raise NotFound(f"no order {call.params['order_id']!r}")   # another channel's order does not exist for you
    return order


def ask_refund(call: Call) -> Any:
    key = idempotency_key(call)
    body = call.body()
    with call.ctx.uow() as uow:
        order = _order(call, uow)
        row, created = refunds.ask(uow, order, amount_fen=body["amount_fen"], reason=body["reason"] or "",
                                   source=call.caller.id, idempotency_key=key)
        answer = {"order_id": order.id, "status": order.status, "refund": refund_list(call, [row])[0]}
        uow.commit()
    return json_response(answer, 202 if created else 200, {"Location": f"/api/v1/orders/{answer['order_id']}"})


def for_operations(call: Call) -> dict:
    wanted = (call.query("status"),) if call.query("status") else None
    with call.ctx.reader() as uow:
        rows = refunds.needing_operator(uow, wanted, call.query("limit") or 200, now=call.deps.now())
        items = [{"order_id": r.order_id, **item} | {"detail": r.detail or "", "updated_at": iso(call, r.updated_at)}
                 for r, item in zip(rows, refund_list(call, rows), strict=True)]
    return {"refunds": items, "statuses": list(wanted or NEEDS_OPERATOR),
            "stale_after_minutes": None if wanted else int(refunds.STALE_AFTER.total_seconds() // 60)}


ROUTES = [
    Route("POST", "/api/v1/orders/{order_id}/refund", ask_refund, "channel_or_ops",
          "Ask for a refund of the order's payment (all that is left, or amount_fen); refunded follows the "
          "payment platform's word", body=schemas.REFUND,
          headers=(Param("Idempotency-Key", schemas.IDEMPOTENCY_KEY),),
          responses={202: "refund recorded and being asked for", 200: "the same request again: the same refund",
                     400: "missing Idempotency-Key", 404: "unknown order",
                     422: "not paid, more than is left to refund, or the key used for another amount"}),
    Route("GET", "/admin/api/refunds", for_operations, "admin",
          "Refunds an operator must look at (abnormal, closed, refused, or still pending after 30 minutes), "
          "or every refund in one status",
          query=(Param("status", schemas.Str(required=False, enum=tuple(str(s) for s in RefundStatus)),
                       "one status instead of those needing an operator"),
                 Param("limit", schemas.Int(required=False, minimum=1, maximum=500), "default 200"))),
]
