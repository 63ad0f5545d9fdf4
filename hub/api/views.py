"""What the handlers share besides the call: times in the hub's offset, an order's and its refunds' views,
the Idempotency-Key header. A leaf of hub/api: it imports no handler module."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api import schemas
from hub.api.http import ApiError, Call
from hub.privacy import mask_phone
from hub.services import money_owed, orders, refunds, tracking
from hub.storage.tables import OrderRow, RefundRow, Shipment
from hub.storage.uow import UnitOfWork


def iso(call: Call, when: Any) -> str | None:
    """Times out in the hub's configured offset."""
    return orders.local_now(call.ctx.config, when).isoformat(timespec="seconds") if when else None


def order_view(call: Call, order: OrderRow) -> dict:
    routing = order.routing or {}
    fulfillment = {"type": order.fulfillment_type, "requested": routing.get("requested"),
                   "store_id": order.location_id if order.fulfillment_type != "express" else None,
                   "location_id": order.location_id}
    if order.fulfillment_type == "delivery" and routing.get("area") is not None:
        # The hub does not charge it (the lines' total is what is paid): the area's fee, as routing found it.
        fulfillment |= {"delivery_area": routing["area"], "delivery_fee_fen": routing.get("delivery_fee_fen")}
    return {"order_id": order.id, "status": order.status, "total_fen": order.total_fen,
            "expires_at": iso(call, order.expires_at), "fulfillment": fulfillment}


def shipment_list(call: Call, uow: UnitOfWork, order_id: str) -> list[dict]:
    """The order's bookings and waybills for operations, oldest first: what each cost (the booked quote's fee,
    the tips escalation added, the penalty a cancel cost, fen) and the last escalation step. Quotes written
    down but never booked show as `quoted`."""
    rows = uow.session.execute(select(Shipment).where(Shipment.order_id == order_id).order_by(Shipment.id)).scalars()
    return [{"kind": s.kind, "carrier": s.carrier, "shipment_ref": s.shipment_ref, "status": s.status,
             "active": bool(s.active), "fee_fen": s.fee_fen, "tip_fen": s.tip_fen, "penalty_fen": s.penalty_fen,
             "escalation": s.escalation, "escalation_detail": s.escalation_detail,
             "escalated_at": iso(call, s.escalated_at), "created_at": iso(call, s.created_at),
             "rider_phone": mask_phone(s.rider_phone) if s.rider_phone else None} for s in rows]


def idempotency_key(call: Call) -> str:
    """The request's Idempotency-Key header, or a 400 saying what it must be."""
    key = call.request.headers.get("Idempotency-Key") or ""
    try:
        schemas.IDEMPOTENCY_KEY.parse(key, "Idempotency-Key")
    except ApiError:
        raise ApiError(400, "idempotency_key_required", "an Idempotency-Key header of 1 to 128 visible ASCII "
                       "characters is required") from None
    return key


def timeline(call: Call, uow: UnitOfWork, order: OrderRow, for_buyer: bool = True) -> list[dict]:
    """The order's changes and courier reports in the order they happened, each once, the end last
    (`services/tracking.py`); the buyer's without booking or waybill numbers."""
    return [{"at": iso(call, s.at), "status": s.status, "source": s.source, "detail": s.detail}
            for s in tracking.order_timeline(uow, order, for_buyer)]


def refund_list(call: Call, rows: list[RefundRow]) -> list[dict]:
    """Refunds as an order shows them (`refund_id` is the out_refund_no), times in the hub's offset."""
    out = []
    for row in rows:
        item = refunds.view(row)
        item["at"], item["settled_at"] = iso(call, item["at"]), iso(call, item["settled_at"])
        out.append(item)
    return out


def order_refunds(call: Call, uow: UnitOfWork, order_id: str) -> list[dict]:
    return refund_list(call, money_owed.of_order(uow, order_id))
