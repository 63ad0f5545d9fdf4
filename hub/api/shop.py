"""The mini-program's endpoints: stock per store, nearby stores, orders and their timeline.

A channel key sees what that channel may sell (location available minus the channel's
safety stock) and only its own orders; anyone else's order is simply not found."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.api import schemas, stock_view
from hub.api.http import Call, Param, Route, json_response
from hub.api.lines import line_view
from hub.api.views import idempotency_key, iso, order_refunds, order_view, timeline
from hub.config import LocationConfig
from hub.domain.errors import InsufficientStock, NotFound, NotSellable, UnknownSku
from hub.domain.geo import CONVERT_TO_GCJ02, distance_km, in_polygon
from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType
from hub.domain.order_states import OrderStatus as S
from hub.domain.routing import is_open
from hub.domain.stock import channel_available
from hub.flows import members
from hub.services import inventory, orders, picking, sold_out
from hub.storage.tables import OrderRow
from hub.storage.uow import UnitOfWork

LAT_LNG = (Param("lat", schemas.LAT, "buyer's latitude (with lng)"),
           Param("lng", schemas.LNG, "buyer's longitude (with lat)"), Param("coords", schemas.COORDS))


def _gcj02(coords: str | None, lat: float, lng: float, field: str) -> tuple[float, float]:
    """The point as GCJ-02. BD-09's offset moves a point by the poles or the date line off the globe (-90.006):
    refused here, before routing or an address stores a latitude no courier or carrier takes."""
    g_lat, g_lng = CONVERT_TO_GCJ02[coords or "gcj02"](lat, lng)
    if not (-90 <= g_lat <= 90 and -180 <= g_lng <= 180):
        raise schemas.invalid(field, f"{lat}, {lng} ({coords}) is no point on the globe in GCJ-02")
    return g_lat, g_lng


def _position(call: Call) -> tuple[float, float] | None:
    lat, lng = call.query("lat"), call.query("lng")
    if lat is None or lng is None:
        if (lat is None) != (lng is None):
            raise schemas.invalid("lat" if lat is None else "lng", "lat and lng are given together")
        return None
    return _gcj02(call.query("coords"), lat, lng, "coords")


def _required_position(call: Call) -> tuple[float, float]:
    pos = _position(call)
    if pos is None:
        raise schemas.invalid("lat", "lat and lng are given together")
    return pos


def _store_offer(call: Call, loc: LocationConfig, available: int, pos: tuple[float, float], qty: int) -> dict:
    """Distance and what the buyer can have from this store now: pickup today, delivery soon."""
    dist = round(distance_km(pos[0], pos[1], loc.lat, loc.lng), 2)
    open_now = is_open(loc, orders.local_now(call.ctx.config, call.deps.now()))
    holds = available >= qty
    offer: dict[str, Any] = {"distance_km": dist, "open_now": open_now, "pickup": loc.pickup and open_now and holds}
    if loc.delivery_areas:        # the area the buyer is in, whatever the basket: its minimum is shown
        area = next((a for a in loc.delivery_areas if in_polygon(pos[0], pos[1], a.polygon)), None)
        offer["delivery"] = area is not None and open_now and holds
        if area is not None:
            offer["delivery_area"] = {"name": area.name, "min_order_fen": area.min_order_fen,
                                      "delivery_fee_fen": area.delivery_fee_fen}
    else:
        offer["delivery"] = 0 < loc.delivery_radius_km and dist <= loc.delivery_radius_km and open_now and holds
    return offer


def stock(call: Call) -> Any:
    cfg, sku = call.ctx.config, call.params["sku"]
    channel = cfg.known_channel(call.caller.id)
    pos = _position(call)
    with call.ctx.reader() as uow:
        try:
            if pos is None and channel.allocation is None:    # the common lookup: one template (stock_view.py)
                return stock_view.render(cfg, sku, inventory.sellable_of(uow.connection, sku), channel.safety_stock)
            held = inventory.held_of(uow.session, sku)
        except UnknownSku:
            raise NotFound(f"unknown SKU {sku!r}") from None
        shares = inventory.channel_figures(uow.session, cfg, channel, sku, held)     # its allocation, if any
    levels = inventory.stock_everywhere(cfg, sku, held)
    locations = []
    for level in levels:
        loc = cfg.known_location(level.location_id)
        available = shares[loc.id] if shares is not None else channel_available(level.available,
                                                                                 channel.safety_stock)
        item: dict[str, Any] = {"location_id": loc.id, "kind": loc.kind, "name": loc.name, "available": available}
        if pos is not None and loc.is_store:
            item |= _store_offer(call, loc, available, pos, 1)
        locations.append(item)
    if pos is not None:
        locations.sort(key=lambda x: (x["kind"] != "store", x.get("distance_km", 0.0)))
    return {"sku": sku, "available": sum(x["available"] for x in locations), "locations": locations}


def nearby(call: Call) -> dict:
    cfg = call.ctx.config
    pos = _required_position(call)
    sku = call.query("sku")
    qty = call.query("qty") or 1
    channel = cfg.known_channel(call.caller.id)
    held: dict[str, int] = {}
    if sku:
        with call.ctx.uow() as uow:
            levels = inventory.stock_of(uow.session, cfg, sku)
            shares = inventory.channel_figures(uow.session, cfg, channel, sku,
                                               {s.location_id: (s.on_hand, s.reserved) for s in levels})
            held = shares if shares is not None else {s.location_id: channel_available(s.available,
                                                                                        channel.safety_stock)
                                                      for s in levels}
    found = []
    for loc in cfg.stores:
        available = held.get(loc.id, 0) if sku else qty
        offer = _store_offer(call, loc, available, pos, qty)
        if offer["pickup"] or offer["delivery"]:
            item = {"store_id": loc.id, "name": loc.name, "address": loc.address, **offer,
                    "opening_hours": loc.opening_hours.view() if loc.opening_hours else None}
            if sku:
                item["available"] = available
            found.append(item)
    found.sort(key=lambda x: (x["distance_km"], x["store_id"]))
    return {"stores": found}


# -- orders --------------------------------------------------------------------------------------

def _command(call: Call, body: dict, key: str, uow: UnitOfWork | None = None,
             keep: list | None = None) -> orders.PlaceOrder:
    """The order request, priced in `uow` (else a transaction of its own); `keep` gets the SKU rows read."""
    if uow is None:
        with call.ctx.uow() as own:
            return _command(call, body, key, own)
    try:
        lines = orders.price_lines(uow, [(line["sku"], line["qty"]) for line in body["lines"]], keep)
    except NotSellable as exc:
        raise schemas.invalid(f"lines[{exc.line}].sku", str(exc)) from None
    b, f = body["buyer"], body["fulfillment"]
    addr = f["address"]
    lat, lng = _gcj02(addr["coords"], addr["lat"], addr["lng"], "fulfillment.address.coords") if addr \
        else (0.0, 0.0)
    return orders.PlaceOrder(
        coupon_code=body["coupon_code"] or None, points=body["points"] or 0,
        channel=call.caller.id, idempotency_key=key, lines=lines,
        buyer=Buyer(b["id"], b["name"] or "", b["phone"] or ""),
        fulfillment=Fulfillment(FulfillmentType(f["type"]), f["store_id"],
                                Address(addr["text"], lat, lng, addr["name"] or "",
                                        addr["phone"] or "") if addr else None),
        note=body["note"] or None)


def place_order(call: Call) -> Any:
    key = idempotency_key(call)
    request = call.body()
    f = request["fulfillment"]
    pickup_at = f["store_id"] if f["type"] == FulfillmentType.PICKUP and f["store_id"] else None
    first_seen = False                  # the sold-out cache had not seen the key: its order is not looked up
    if pickup_at:
        # A store known to be sold out answers from the cache (domain/sold_out.py), the order database untouched.
        channel, store = call.ctx.config.known_channel(call.caller.id), pickup_at

        def store_refusal() -> None:            # what config says of the store: no database read
            orders.check_pickup_store(call.ctx.config, store, call.deps.now())

        try:
            first_seen = sold_out.check(call.ctx.sold_out, call.ctx.config, channel.id, channel.safety_stock, key,
                                        pickup_at, [(line["sku"], line["qty"]) for line in request["lines"]],
                                        store_refusal)
        except InsufficientStock:       # only the cache raises it here (routing's own answer is NoRoute)
            call.deps.metrics.sold_out_cache_refusals.labels(channel.id).inc()
            raise
    # An order naming a coupon or points asks the CRM, no transaction open; any other is priced in its own.
    asks_crm = bool(request["coupon_code"] or request["points"])
    cmd, held = members.hold(call.ctx, _command(call, request, key)) if asks_crm else (None, None)
    try:
        for attempt in range(2):
            try:
                with call.ctx.uow() as uow:
                    skus: list = []             # the SKU rows, read once for pricing and the order's checks
                    cmd = cmd if asks_crm else _command(call, request, key, uow, skus)
                    assert cmd is not None
                    # A pickup is written outside the ORM: on PostgreSQL its rows, reservation and stock
                    # row's UPDATE are one statement, so a hot stock row is locked from there to the COMMIT.
                    # The key's unique constraint refuses a duplicate the cache did not know (IntegrityError):
                    # the second attempt looks the key up.
                    order, created = orders.place(uow, call.ctx.config, cmd, now=call.deps.now(),
                                                  detached=pickup_at is not None,
                                                  known_new=first_seen and not attempt)
                    body = order_view(call, order)
                    uow.commit()
                break
            except IntegrityError:
                # A concurrent request with the same key committed first: answer with its order.
                if attempt:
                    raise
    except InsufficientStock as exc:
        members.give_back_unplaced(call.ctx, held)          # nothing placed: what the attempt held goes back
        if pickup_at:                      # what the ledger said spares the next attempts the database
            sold_out.note_refusal(call.ctx.sold_out, call.ctx.config, exc, pickup_at,
                                  call.ctx.config.known_channel(call.caller.id).safety_stock)
        raise
    except Exception:
        members.give_back_unplaced(call.ctx, held)          # nothing placed: what the attempt held goes back
        raise
    if created:
        call.deps.metrics.orders_placed.labels(body["fulfillment"]["type"]).inc()
    return json_response(body, 201 if created else 200, {"Location": f"/api/v1/orders/{body['order_id']}"})


def _own(uow: UnitOfWork, call: Call, lock: bool = False) -> OrderRow:
    order_id = call.params["order_id"]
    order = uow.session.execute(select(OrderRow).where(OrderRow.id == order_id)).scalar_one_or_none()
    if order is None or order.channel != call.caller.id:
        raise NotFound(f"no order {order_id!r}")          # another channel's order does not exist for you
    return orders.get(uow, order_id, lock=True) if lock else order


def pay_order(call: Call) -> dict:
    body = call.body()
    with call.ctx.uow() as uow:
        order = _own(uow, call, lock=True)
        orders.mark_paid(uow, order, call.caller.id, body["payment_ref"], body["amount_fen"], call.deps.now())
        uow.commit()
        return {"order_id": order.id, "status": order.status}


PENDING_CANCEL: dict[str, str] = {
    S.CANCEL_REQUESTED: "a rider is booked: the courier is asked to cancel; the order is cancelled (and refunded) "
                        "only if it accepts",
    S.RETURNING: "the delivery failed: the goods are on their way back, the refund follows"}


def cancel_order(call: Call):
    """Cancelled at once, or — once a rider is booked — a request the courier answers (202)."""
    body = call.body()
    with call.ctx.uow() as uow:
        order = _own(uow, call, lock=True)
        orders.cancel(uow, order, call.caller.id, body["reason"] or "cancelled by the buyer")
        uow.commit()
        answer = {"order_id": order.id, "status": order.status}
    if answer["status"] in PENDING_CANCEL:
        return json_response({**answer, "message": PENDING_CANCEL[answer["status"]]}, 202)
    return answer


def get_order(call: Call) -> dict:
    with call.ctx.reader() as uow:
        order = _own(uow, call)
        routing = order.routing or {}
        return {
            **order_view(call, order),
            "pickup_code": order.pickup_code if order.fulfillment_type == "pickup" else None,
            "lines": [line_view(x) for x in order.lines],
            "buyer": order.buyer, "address": order.address,
            "created_at": iso(call, order.created_at), "paid_at": iso(call, order.paid_at),
            # When the store is to have it ready (pickup) or handed over (delivery), in its open hours.
            "promised_at": iso(call, picking.promised_at(call.ctx.config, order)),
            "timeline": timeline(call, uow, order),
            "refunds": order_refunds(call, uow, order.id),
            "routing": {"rule": routing.get("rule"), "location_id": routing.get("location_id"),
                        **{k: routing[k] for k in ("area", "delivery_fee_fen", "ready_from") if k in routing},
                        "candidates": routing.get("candidates", [])},
        }


ORDER = "/api/v1/orders/{order_id}"
ROUTES = [
    Route("GET", "/api/v1/stock/{sku}", stock, "channel", "What this channel may sell of a SKU, per location",
          query=LAT_LNG, responses={200: "stock per location", 404: "unknown SKU"}),
    Route("GET", "/api/v1/stores/nearby", nearby, "channel", "Stores that can serve, nearest first",
          query=(Param("lat", replace(schemas.LAT, required=True), "buyer's latitude (GCJ-02)"),
                 Param("lng", replace(schemas.LNG, required=True), "buyer's longitude (GCJ-02)"),
                 Param("coords", schemas.COORDS),
                 Param("sku", replace(schemas.SKU, required=False)), Param("qty", schemas.QTY, "default 1")),
          responses={200: "stores (distance, open_now, pickup, delivery, the delivery_area the buyer is in with "
                          "its min_order_fen and delivery_fee_fen, opening_hours)", 422: "bad position or quantity"}),
    Route("POST", "/api/v1/orders", place_order, "channel", "Place an order (stock reserved, or 409)",
          body=schemas.PLACE_ORDER, headers=(Param("Idempotency-Key", schemas.IDEMPOTENCY_KEY),),
          responses={201: "placed", 200: "the same request again: the same order", 400: "malformed",
                     409: "insufficient stock (short lines) or no route", 422: "invalid or key reused"}),
    Route("POST", ORDER + "/pay", pay_order, "channel", "Mark paid (backend-confirmed payment)",
          body=schemas.PAY_ORDER, responses={200: "paid", 404: "unknown order", 409: "illegal transition"}),
    Route("POST", ORDER + "/cancel", cancel_order, "channel",
          "Cancel (stock released); once a rider is booked, a request the courier answers",
          body=schemas.CANCEL_ORDER, responses={200: "cancelled (or already ended: returned)",
                                                202: "cancel_requested: the courier decides (or returning)",
                                                404: "unknown order", 409: "illegal transition (rider has the goods)"}),
    Route("GET", ORDER, get_order, "channel", "An order with its timeline and routing",
          responses={200: "the order (promised_at; a delivery's delivery_area and delivery_fee_fen)",
                     404: "unknown order"}),
]
