"""The stores' POS over REST (Square-style): the store's orders out, inventory changes in.

Every order a store fulfils is created once per hub order (the hub's order id is the idempotency
key) with one fulfilment in PROPOSED — PICKUP, DELIVERY (a rider the hub books), or SHIPMENT (a
parcel the store packs) —; staff or the hub move it to PREPARED, COMPLETED or CANCELED. Updates
carry the order's version, so a stale write is refused by the POS and retried against the fresh
version here.
"""
from __future__ import annotations

from typing import Any, Self
from urllib.parse import quote

import requests

from hub.config import SystemConfig
from hub.domain.model import OrderSnapshot, StockCount, StockDelta
from hub.ports import PointOfSale
from mappings import Mapping, load_mapping

from .base import Binder, MappingError, PermanentError, RetryPolicy, http_call, http_session


class PosConnector:
    kind = "pos_rest"
    role = "pos"

    def __init__(self, name: str, mapping: Mapping, base_url: str, api_key: str, binder: Binder,
                 retry: RetryPolicy, timeout: float = 5.0, session: requests.Session | None = None):
        self.name, self.mapping, self.binder, self.retry, self.timeout = name, mapping, binder, retry, timeout
        self.base_url = base_url.rstrip("/")
        self.session = session or http_session(self.base_url)
        self.session.headers.update({"Authorization": f"Bearer {api_key}", "Square-Version": "2024-01-18"})

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, load_mapping(name), system.get("base_url"), system.get("api_key"), binder, retry,
                   timeout=float(system.get("timeout", 5.0)))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self.retry.call(http_call, self.name, self.session, method, self.base_url + path,
                               timeout=self.timeout, json=body)
        return resp.json()

    # -- the store's orders ------------------------------------------------------------------------
    def push_order(self, order: OrderSnapshot) -> str:
        """Create the order at its store's POS (once per hub order), as the fulfilment its type is (pickup,
        delivery, a parcel to ship) with its lines, shelf hints, promised time and note; returns the POS's id."""
        if not order.location_id:
            raise MappingError(self.name, "location_id", None, "an order for the POS needs its store")
        entity = self.mapping.value("order_entity", order.fulfillment.type)
        address = order.fulfillment.address
        buyer = {"name": order.buyer.name or order.buyer.id, "phone": order.buyer.phone or None}
        if address is not None and order.fulfillment.type != "pickup":     # the receiver at the door
            buyer = {"name": address.name or buyer["name"], "phone": address.phone or buyer["phone"],
                     "address": address.text}
        fulfillment: dict[str, Any] = {"state": "proposed"}
        if order.promised_at is not None:     # absent keys are left out of the payload (no nulls sent)
            fulfillment.update(promised_at=order.promised_at, schedule="SCHEDULED")
        if order.note:
            fulfillment["note"] = order.note
        lines = []
        for ln in order.lines:
            line: dict[str, Any] = {"sku": ln.sku, "qty": ln.qty, "unit_price_fen": ln.unit_price_fen}
            if order.bins.get(ln.sku):
                line["bin"] = order.bins[ln.sku]
            lines.append(line)
        canonical = {"order_id": order.order_id, "store_id": order.location_id, "lines": lines,
                     "fulfillment": fulfillment, "buyer": buyer}
        payload = self.mapping.outbound(entity, canonical, self.binder)
        payload["idempotency_key"] = f"hub-order-{order.order_id}"
        answer = self._call("POST", self.mapping.operation("order_create"), payload)
        pos_id = str((answer.get("order") or {}).get("id") or "")
        if not pos_id:
            raise MappingError(self.name, "order.id", None, "the POS answered without an order id")
        self.binder.bind(self.name, "order", pos_id, order.order_id)
        return pos_id

    def get_order(self, pos_order_id: str) -> dict[str, Any]:
        """The POS's view of an order, in canonical terms (state, version, lines...)."""
        answer = self._call("GET", self._order_path(pos_order_id))
        return self.mapping.inbound("pickup_order", answer, self.binder)

    def update_order_state(self, order: OrderSnapshot, state: str) -> None:
        """Move the order's fulfilment: "ready" -> PREPARED, "collected" (handed over: at the counter, to the
        rider or the carrier) -> COMPLETED, "cancelled" -> CANCELED. Doing it twice is harmless."""
        target = self.mapping.value("pickup_state", state, "out")        # refuses an unknown state
        pos_id = self.binder.to_external(self.name, "order", order.order_id) or self.push_order(order)
        if state == "collected" and self.get_order(pos_id)["fulfillment"]["state"] in ("proposed", "reserved"):
            # The POS completes only a prepared fulfilment: the ready step the hub did not get to tell it first.
            self._move(order, pos_id, "ready", self.mapping.value("pickup_state", "ready", "out"))
        self._move(order, pos_id, state, target)

    def _move(self, order: OrderSnapshot, pos_id: str, state: str, target: str) -> None:
        order_state = self.mapping.value("order_state_for", state)
        for attempt in (1, 2):
            current = self.get_order(pos_id)
            if current["fulfillment"]["state"] == state:
                return
            body = {"idempotency_key": f"hub-order-{order.order_id}-{state}",
                    "order": {"location_id": self.binder.to_external(self.name, "store", order.location_id or ""),
                              "version": current["version"], "state": order_state,
                              "fulfillments": [{"uid": current["fulfillment"]["uid"], "state": target}]}}
            try:
                self._call("PUT", self._order_path(pos_id), body)
                return
            except PermanentError as exc:
                # Someone (staff at the till) changed it meanwhile: read the new version, try once more.
                if "VERSION_MISMATCH" not in str(exc) or attempt == 2:
                    raise

    # The names the pickup-only connector had; callers that know only pickups keep working.
    push_pickup_order = push_order
    get_pickup_order = get_order
    update_pickup_state = update_order_state

    def _order_path(self, pos_order_id: str) -> str:
        return self.mapping.operation("order").format(order_id=quote(pos_order_id, safe=""))

    # -- inventory changes ------------------------------------------------------------------------
    def parse_inventory_changes(self, payload: dict[str, Any], store_id: str) -> list[StockDelta | StockCount]:
        """Map the POS's inventory webhook for `store_id` to ledger entries; refuse it all if any
        change is bad (unknown SKU, negative count, missing time, another store's change)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("changes"), list):
            raise MappingError(self.name, "changes", None, "expected an object with a list of changes")
        if not payload["changes"]:
            raise MappingError(self.name, "changes", [], "no changes")
        out: list[StockDelta | StockCount] = []
        for i, change in enumerate(payload["changes"]):
            where = f"changes[{i}]"
            if not isinstance(change, dict):
                raise MappingError(self.name, where, change, "change is not an object")
            try:
                kind = self.mapping.value("change_type", change.get("type"))
            except MappingError:
                raise MappingError(self.name, f"{where}.type", change.get("type"), "unknown change type") from None
            body = change.get("adjustment" if kind == "adjustment" else "physical_count")
            if not isinstance(body, dict):
                raise MappingError(self.name, where, change.get("type"), "change has no body for its type")
            entity = "adjustment" if kind == "adjustment" else "physical_count"
            try:
                f = self.mapping.inbound(entity, body, self.binder)
            except MappingError as exc:
                raise MappingError(self.name, f"{where}.{exc.field}", exc.value,
                                   str(exc).split(": ", 1)[1].rsplit(" (field", 1)[0]) from None
            if f["store_id"] is not None and f["store_id"] != store_id:
                raise MappingError(self.name, f"{where}.location_id", body.get("location_id"),
                                   f"change is for store {f['store_id']}, not {store_id}")
            external_id = f["id"] or f["idempotency_key"]
            if not external_id:
                raise MappingError(self.name, f"{where}.id", None, "change has neither id nor idempotency_key")
            out.append(self._delta(f, where, store_id, external_id) if kind == "adjustment"
                       else self._count(f, where, store_id, external_id))
        return out

    def _delta(self, f: dict[str, Any], where: str, store_id: str, external_id: str) -> StockDelta:
        if f["qty"] <= 0:
            raise MappingError(self.name, f"{where}.adjustment.quantity", f["qty"],
                               "adjustment quantity must be positive (direction comes from the states)")
        pair = f"{f['from_state']}>{f['to_state']}"
        try:
            reason = self.mapping.value("adjustment_reason", pair)
        except MappingError:
            raise MappingError(self.name, f"{where}.adjustment", pair,
                               "unknown from_state>to_state (not a change of on-hand stock)") from None
        on_hand = self.mapping.operation("on_hand_state")
        sign = 1 if f["to_state"] == on_hand else -1
        return StockDelta(source=self.name, external_id=str(external_id), sku=f["sku"], location_id=store_id,
                          qty=sign * f["qty"], occurred_at=f["occurred_at"], reason=reason)

    def _count(self, f: dict[str, Any], where: str, store_id: str, external_id: str) -> StockCount:
        if f["on_hand"] < 0:
            raise MappingError(self.name, f"{where}.physical_count.quantity", f["on_hand"],
                               "a count cannot be negative")
        if f["state"] != self.mapping.operation("on_hand_state"):
            raise MappingError(self.name, f"{where}.physical_count.state", f["state"],
                               "only counts of on-hand stock are accepted")
        return StockCount(source=self.name, external_id=str(external_id), sku=f["sku"], location_id=store_id,
                          on_hand=f["on_hand"], counted_at=f["occurred_at"])

    def close(self) -> None:
        self.session.close()


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[PointOfSale] = PosConnector
