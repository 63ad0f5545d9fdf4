"""Store POS simulator (Square-style): the store's orders per location — one PICKUP, DELIVERY or
SHIPMENT fulfilment each, with its details (recipient, promised time, note) — and their fulfilment
state changes, Bearer-key auth, idempotent creates, versioned updates, and SearchOrders
(`POST /v2/orders/search`: by location, order state, fulfilment type and state; a cursor over
pages), the list a till shows; and it posts inventory changes (the POS's webhook shape) to the hub.

The POS's location and catalog ids differ from the hub's store ids and SKUs
(`POS_LOCATIONS`, `catalog_id`), so the binder's cross-reference is really exercised.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Self

import requests

from connectors.base import Binder

from .base import Request, Response, SandboxSystem, Simulator

SYSTEM = "pos"
POS_LOCATIONS = {"S001": "LJNGAN01QZ8W", "S002": "LXUJIA02RT5K", "S003": "LLUJIA03MN7P"}
# A fulfilment may only move forward (or be cancelled before it completes).
# The details object each fulfilment type carries (Square's), and whether its recipient needs an address.
_DETAILS = {"PICKUP": ("pickup_details", False), "DELIVERY": ("delivery_details", True),
            "SHIPMENT": ("shipment_details", True)}
_NEXT = {"PROPOSED": {"RESERVED", "PREPARED", "CANCELED"}, "RESERVED": {"PREPARED", "CANCELED"},
         "PREPARED": {"COMPLETED", "CANCELED"}, "COMPLETED": set(), "CANCELED": set()}


def catalog_id(sku: str) -> str:
    """The POS's catalog item-variation id for a hub SKU, in the sandbox."""
    return "CV" + hashlib.sha1(sku.encode()).hexdigest()[:14].upper()


def sandbox_bindings(skus: Iterable[str], locations: dict[str, str] | None = None,
                     system: str = SYSTEM) -> list[tuple[str, str, str, str]]:
    rows = [(system, "sku", catalog_id(sku), sku) for sku in skus]
    rows += [(system, "store", loc, store) for store, loc in (locations or POS_LOCATIONS).items()]
    return rows


def seed_binder(binder: Binder, skus: Iterable[str], locations: dict[str, str] | None = None,
                system: str = SYSTEM) -> Binder:
    for row in sandbox_bindings(skus, locations, system):
        binder.bind(*row)
    return binder


def _rfc3339(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def _error(status: int, code: str, detail: str, category: str = "INVALID_REQUEST_ERROR") -> Response:
    return Response(status, {"errors": [{"category": category, "code": code, "detail": detail}]})


class PosSimulator(Simulator):
    name = "pos"

    def __init__(self, *, api_key: str, port: int = 0, host: str = "127.0.0.1",
                 locations: Iterable[str] = POS_LOCATIONS.values()):
        self._api_key = api_key
        self.locations = set(locations)
        self.orders: dict[str, dict[str, Any]] = {}             # POS order id -> order
        self.state_changes: list[tuple[str, str, str]] = []     # (POS order id, hub order id, new state)
        self.inventory_posts: list[tuple[str, int]] = []        # (url, hub's HTTP status)
        self._by_key: dict[str, tuple[str, str]] = {}           # idempotency key -> (fingerprint, order id)
        self.till_edits_after_get = 0    # knob: staff touch the order right after the hub reads it
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(api_key=env["HUB_POS_API_KEY"], port=port)

    def setup_routes(self) -> None:
        self.route("POST", "/v2/orders", self._auth(self._create))
        self.route("POST", "/v2/orders/search", self._auth(self._search))
        self.route("GET", "/v2/orders/*", self._auth(self._get))
        self.route("PUT", "/v2/orders/*", self._auth(self._update))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.orders.clear()
            self.state_changes.clear()
            self.inventory_posts.clear()
            self._by_key.clear()
            self.till_edits_after_get = 0

    # -- reading, in hub terms ----------------------------------------------------------------
    def orders_at(self, store_id: str, fulfillment_type: str | None = None) -> list[dict[str, Any]]:
        """The store's orders, of one fulfilment type (PICKUP, DELIVERY, SHIPMENT) if named."""
        loc = POS_LOCATIONS.get(store_id, store_id)
        return [o for o in self.orders.values() if o["location_id"] == loc and
                (fulfillment_type is None or o["fulfillments"][0]["type"] == fulfillment_type)]

    def order_for(self, hub_order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["reference_id"] == hub_order_id), None)

    def pickup_state(self, hub_order_id: str) -> str | None:
        order = self.order_for(hub_order_id)
        return order["fulfillments"][0]["state"] if order else None

    def staff_mark(self, hub_order_id: str, state: str) -> None:
        """A change made at the till (bumps the version, as the hub will find)."""
        with self._lock:
            order = self.order_for(hub_order_id)
            assert order is not None
            order["fulfillments"][0]["state"] = state
            order["version"] += 1

    # -- the POS calling the hub --------------------------------------------------------------
    def adjustment(self, sku: str, qty: int, store_id: str, *, from_state: str = "IN_STOCK",
                   to_state: str = "SOLD", occurred_at: datetime | None = None,
                   change_id: str | None = None) -> dict[str, Any]:
        return {"type": "ADJUSTMENT", "adjustment": {
            "id": change_id or secrets.token_hex(8).upper(), "catalog_object_id": catalog_id(sku),
            "catalog_object_type": "ITEM_VARIATION", "location_id": POS_LOCATIONS.get(store_id, store_id),
            "quantity": str(qty), "from_state": from_state, "to_state": to_state,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")}}

    def physical_count(self, sku: str, on_hand: int, store_id: str, *, occurred_at: datetime | None = None,
                       change_id: str | None = None) -> dict[str, Any]:
        return {"type": "PHYSICAL_COUNT", "physical_count": {
            "id": change_id or secrets.token_hex(8).upper(), "catalog_object_id": catalog_id(sku),
            "catalog_object_type": "ITEM_VARIATION", "location_id": POS_LOCATIONS.get(store_id, store_id),
            "quantity": str(on_hand), "state": "IN_STOCK",
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")}}

    def send_inventory_change(self, url: str, store_key: str, payload: dict[str, Any]) -> requests.Response:
        """Post an inventory webhook (`{"changes": [...]}`) to the hub with the store's key.
        With faults.duplicate_callbacks it goes twice; with reorder_callbacks the changes go newest first."""
        if self.faults.reorder_callbacks:
            payload = {**payload, "changes": list(reversed(payload.get("changes", [])))}
        payload = {"idempotency_key": payload.get("idempotency_key") or secrets.token_hex(8), **payload}
        first = None
        for _ in range(2 if self.faults.duplicate_callbacks else 1):
            resp = requests.post(url, json=payload, timeout=10, headers={"Authorization": f"Bearer {store_key}"})
            with self._lock:
                self.inventory_posts.append((url, resp.status_code))
            first = first or resp
        assert first is not None
        return first

    # -- the hub calling the POS --------------------------------------------------------------
    def _auth(self, handler):
        def wrapped(req: Request) -> Response:
            auth = {k.lower(): v for k, v in req.headers.items()}.get("authorization", "")
            if auth != f"Bearer {self._api_key}":
                return _error(401, "UNAUTHORIZED", "This request could not be authorized.",
                              "AUTHENTICATION_ERROR")
            body = None
            if req.method in ("POST", "PUT"):
                try:
                    body = req.json()
                except ValueError:
                    return _error(400, "INVALID_CONTENT_TYPE", "body is not JSON")
                if not isinstance(body, dict):
                    return _error(400, "INVALID_VALUE", "body is not an object")
            return handler(req, body)
        return wrapped

    def _create(self, req: Request, body: dict[str, Any]) -> Response:
        key, order = body.get("idempotency_key"), body.get("order")
        if not key or not isinstance(order, dict):
            return _error(400, "MISSING_REQUIRED_PARAMETER", "idempotency_key and order are required")
        fingerprint = hashlib.sha256(req.body).hexdigest()
        with self._lock:
            if key in self._by_key:
                seen, order_id = self._by_key[key]
                if seen != fingerprint:
                    return _error(400, "IDEMPOTENCY_KEY_REUSED", "idempotency_key reused with another order")
                return Response(200, {"order": self.orders[order_id]})
            problem = self._invalid(order)
            if problem:
                return _error(400, "INVALID_VALUE", problem)
            order_id = "ORD" + secrets.token_hex(10).upper()
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            stored = {**order, "id": order_id, "version": 1, "created_at": now, "updated_at": now,
                      "fulfillments": [{**f, "uid": secrets.token_hex(6)} for f in order["fulfillments"]]}
            self.orders[order_id] = stored
            self._by_key[key] = (fingerprint, order_id)
            return Response(200, {"order": stored})

    def _invalid(self, order: dict[str, Any]) -> str | None:
        if order.get("location_id") not in self.locations:
            return f"unknown location_id {order.get('location_id')!r}"
        items = order.get("line_items") or []
        if not items:
            return "line_items is empty"
        for item in items:
            if not re.fullmatch(r"[1-9]\d*", str(item.get("quantity", ""))) or not item.get("catalog_object_id"):
                return "line item needs catalog_object_id and a positive quantity string"
        fulfillments = order.get("fulfillments") or []
        if len(fulfillments) != 1 or fulfillments[0].get("type") not in _DETAILS or \
                fulfillments[0].get("state") != "PROPOSED":
            return "one PICKUP, DELIVERY or SHIPMENT fulfillment in state PROPOSED is expected"
        kind = fulfillments[0]["type"]
        key, needs_address = _DETAILS[kind]
        details = fulfillments[0].get(key) or {}
        recipient = details.get("recipient")
        if not recipient:
            return f"{key}.recipient is required"
        if needs_address and not (recipient.get("address") or {}).get("address_line_1"):
            return f"{key}.recipient.address is required for a {kind} fulfillment"
        when = {"PICKUP": "pickup_at", "DELIVERY": "deliver_at"}.get(kind)
        if when and details.get("schedule_type") == "SCHEDULED" and not _rfc3339(details.get(when)):
            return f"{key}.{when} (RFC 3339) is required when schedule_type is SCHEDULED"
        return None

    def _search(self, req: Request, body: dict[str, Any]) -> Response:
        """SearchOrders: the orders of the named locations, filtered by order state and fulfilment type and
        state, oldest first, `limit` a page (`cursor` for the next)."""
        locations = body.get("location_ids")
        if not isinstance(locations, list) or not 1 <= len(locations) <= 10:
            return _error(400, "INVALID_VALUE", "location_ids: 1 to 10 location ids are required")
        flt = ((body.get("query") or {}).get("filter") or {})
        states = set((flt.get("state_filter") or {}).get("states") or [])
        kinds = set((flt.get("fulfillment_filter") or {}).get("fulfillment_types") or [])
        f_states = set((flt.get("fulfillment_filter") or {}).get("fulfillment_states") or [])
        limit, start = body.get("limit", 500), body.get("cursor") or "0"
        if not isinstance(limit, int) or not 1 <= limit <= 1000 or not str(start).isdigit():
            return _error(400, "INVALID_VALUE", "limit is 1..1000 and cursor one this endpoint gave")
        with self._lock:
            found = [json.loads(json.dumps(o)) for o in sorted(self.orders.values(), key=lambda o: o["created_at"])
                     if o["location_id"] in locations and (not states or o["state"] in states)
                     and (not kinds or o["fulfillments"][0]["type"] in kinds)
                     and (not f_states or o["fulfillments"][0]["state"] in f_states)]
        page, offset = found[int(start):int(start) + limit], int(start) + limit
        return Response(200, {"orders": page, **({"cursor": str(offset)} if offset < len(found) else {})})

    def _get(self, req: Request, body: None) -> Response:
        order = self.orders.get(req.path.removeprefix("/v2/orders/"))
        if order is None:
            return _error(404, "NOT_FOUND", "order not found")
        answer = Response(200, {"order": json.loads(json.dumps(order))})
        with self._lock:
            if self.till_edits_after_get > 0:
                self.till_edits_after_get -= 1
                order["version"] += 1            # e.g. a note added at the till
        return answer

    def _update(self, req: Request, body: dict[str, Any]) -> Response:
        order_id = req.path.removeprefix("/v2/orders/")
        change = body.get("order") or {}
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                return _error(404, "NOT_FOUND", "order not found")
            if change.get("version") != order["version"]:
                return _error(400, "VERSION_MISMATCH", f"order is at version {order['version']}")
            for f in change.get("fulfillments") or []:
                current = next((c for c in order["fulfillments"] if c["uid"] == f.get("uid")), None)
                if current is None:
                    return _error(400, "INVALID_VALUE", f"no fulfillment {f.get('uid')!r}")
                if f.get("state") not in _NEXT.get(current["state"], set()):
                    return _error(400, "INVALID_STATE_TRANSITION",
                                  f"fulfillment cannot go from {current['state']} to {f.get('state')}")
                current["state"] = f["state"]
                self.state_changes.append((order_id, order["reference_id"], f["state"]))
            if change.get("state"):
                order["state"] = change["state"]
            order["version"] += 1
            order["updated_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            return Response(200, {"order": order})


SANDBOX = SandboxSystem("pos", PosSimulator, 8705, "HUB_POS_URL",
                        credentials={"HUB_POS_API_KEY": "sandbox-pos-api-key-0001"}, bind=seed_binder)
