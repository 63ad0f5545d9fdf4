"""The ERP's pull feed of completed orders: pages by cursor, then acknowledges."""
from __future__ import annotations

from hub.api import schemas
from hub.api.http import Call, Param, Route
from hub.api.views import iso
from hub.domain.refunds import line_amount_fen
from hub.privacy import mask_phone
from hub.services import erp_feed
from hub.storage.tables import ErpFeedEntry, OrderRow


def _order(call: Call, entry: ErpFeedEntry, order: OrderRow) -> dict:
    buyer = order.buyer or {}
    return {"seq": entry.seq, "order_id": order.id, "external_id": order.external_id, "channel": order.channel,
            "status": order.status, "fulfillment": order.fulfillment_type, "location_id": order.location_id,
            "lines": [{"sku": x.sku, "qty": x.qty, "unit_price_fen": x.unit_price_fen,
                       "amount_fen": line_amount_fen(x), "location_id": x.location_id}
                      for x in order.lines],
            "total_fen": order.total_fen, "payment_ref": order.payment_ref,
            "buyer": {"id": buyer.get("id"), "name": buyer.get("name", ""), "phone": mask_phone(buyer.get("phone"))},
            "created_at": iso(call, order.created_at), "paid_at": iso(call, order.paid_at),
            "completed_at": iso(call, entry.added_at)}


def feed(call: Call) -> dict:
    after = call.query("after") or 0
    limit = call.query("limit") or 50
    with call.ctx.uow() as uow:
        rows, nxt = erp_feed.page(uow, after, limit)
        body = {"orders": [_order(call, e, o) for e, o in rows], "next": nxt}
        uow.commit()          # releases the feed lock
    return body


def ack(call: Call) -> dict:
    ids = call.body()["order_ids"]
    with call.ctx.uow() as uow:
        acked, unknown = erp_feed.ack(uow, ids, call.deps.now())
        if unknown:
            raise schemas.invalid("order_ids", f"not in the feed: {', '.join(unknown[:20])}")
        uow.commit()
    return {"acked": acked}


ROUTES = [
    Route("GET", "/api/v1/erp/orders", feed, "erp", "Completed orders not yet acknowledged, by cursor",
          query=(Param("after", schemas.Int(required=False, minimum=0, maximum=2**62),
                       "the `next` of the previous page; 0 to start"),
                 Param("limit", schemas.Int(required=False, minimum=1, maximum=erp_feed.MAX_PAGE), "default 50")),
          responses={200: "{orders, next}; next is null at the end", 422: "bad cursor or limit"}),
    Route("POST", "/api/v1/erp/orders/ack", ack, "erp", "Acknowledge orders taken (never returned again)",
          body=schemas.ERP_ACK, responses={200: "acked", 422: "an id not in the feed; nothing acked"}),
]
