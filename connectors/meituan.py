"""Meituan 闪购-style instant-retail platform: a sales channel that takes (and refunds) its own payments.

Every call is signed the platform's way: `sig` = md5(URL + "?" + the parameters but `sig`, sorted by
name, as k=v joined by & + app_secret), with `app_id` and `timestamp` among them; system parameters go
in the query, the call's own in the form body. Pushes to `/callbacks/<system>` are signed the same way
over the push address registered with the platform (`push_url`), so the hub checks them with the secret.
A push only says "order X changed"; the order is read with its detail query, so a late or repeated push
is harmless. Status and error codes are the mapping's (`mappings/<system>.yaml`), not code here.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterable
from collections.abc import Mapping as Query
from datetime import datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl

from hub.config import SystemConfig
from hub.domain.model import (
    Address,
    Buyer,
    ChannelRefundRequest,
    Fulfillment,
    FulfillmentType,
    OrderLine,
    PlaceOrder,
    TrackingEvent,
    TrackingStatus,
)
from hub.ports import (
    ChannelOrderRefusal,
    ChannelPushes,
    ChannelRefunds,
    ChannelRiders,
    ChannelStockPublisher,
    OrderPage,
    StoreStockBatches,
)
from mappings import Mapping, load_mapping

from .base import (
    Binder,
    MappingError,
    PermanentError,
    RetryPolicy,
    SignatureError,
    TransientError,
)
from .pooled_http import PooledHttp

PUSH_WINDOW_S = 300
LIST_WINDOW_S = 24 * 3600          # getOrderIdByPage: one day per ask (sandbox assumption, README)


def sign(url: str, params: Query[str, Any], secret: str) -> str:
    """md5(url?k1=v1&k2=v2... + secret), every parameter but `sig`, sorted by name, lower-case hex."""
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sig")
    return hashlib.md5(f"{url}?{text}{secret}".encode()).hexdigest()


def channel_mapping(name: str, mapping: str | None) -> Mapping:
    """The system's mapping: `mappings/<name>.yaml`, or the file `mapping:` names (a name under mappings/, or a
    path: another platform of this kind kept outside the tree). Either way the file's `system:` is its name."""
    if not mapping:
        return load_mapping(name)
    path = Path(mapping)
    stem = path.name.removesuffix(".yaml")
    return load_mapping(stem, path.parent) if path.parent != Path(".") else load_mapping(stem)


# retail/sku/stock takes at most 200 entries of food_data per call (the open platform's limit, as we read it).
STOCKS_PER_CALL = 200


class MeituanConnector:
    kind = "meituan_retail"
    role = "channel"
    callback = "channel_order_push"
    takes_payment = True                  # the platform takes (and refunds) its orders' money
    callback_accepted = {"data": "ok"}                      # what the platform expects back from a push
    callback_error = {"data": "ng"}
    pull_window_s = LIST_WINDOW_S
    stocks_per_call = STOCKS_PER_CALL

    def __init__(self, name: str, mapping: Mapping, base_url: str, app_id: str, app_secret: str, push_url: str,
                 binder: Binder, retry: RetryPolicy, channel: str = "meituan", timeout: float = 5.0):
        self.name, self.mapping, self.binder, self.retry, self.channel = name, mapping, binder, retry, channel
        self.base_url, self._app_id, self._secret = base_url.rstrip("/"), app_id, app_secret
        self.push_url, self.timeout = push_url, timeout
        self.http = PooledHttp(self.base_url)       # channel sync's stock call per store (pooled_http.py)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, channel_mapping(name, system.get("mapping")), system.get("base_url"), system.get("app_id"),
                   system.get("app_secret"),
                   system.get("push_url"), binder, retry, channel=system.get("channel", name),
                   timeout=float(system.get("timeout", 5.0)))

    # -- calls ------------------------------------------------------------------------------------
    def _call(self, operation: str, params: dict[str, Any]) -> Any:
        return self.retry.call(self._once, operation, params)

    def _once(self, operation: str, params: dict[str, Any]) -> Any:
        url = self.base_url + self.mapping.operation(operation)
        params = {k: v for k, v in params.items() if v not in ("", None)}     # empty parameters are not sent
        system = {"app_id": self._app_id, "timestamp": str(int(time.time()))}
        system["sig"] = sign(url, {**params, **system}, self._secret)
        resp = self.http.call(self.name, "POST", url, timeout=self.timeout, params=system, form=params)
        try:
            answer = resp.json()
        except ValueError:
            raise TransientError(self.name, f"{operation}: answer is not JSON (HTTP {resp.status_code})") from None
        if not isinstance(answer, dict) or "data" not in answer:
            raise TransientError(self.name, f"{operation}: answer without data")
        if answer["data"] == "ng" or answer.get("error"):
            error = answer.get("error") or {}
            code, text = error.get("code"), f"{operation}: error {error.get('code')}: {error.get('msg', '')}"
            try:
                kind = self.mapping.value("error_code", code)
            except MappingError:
                kind = "permanent"
            if kind == "transient":
                raise TransientError(self.name, text)
            raise PermanentError(self.name, text)
        return answer["data"]

    # -- pushes -----------------------------------------------------------------------------------
    def verify_push(self, params: Query[str, str], now: float | None = None) -> None:
        missing = [k for k in ("sig", "timestamp", "app_id") if not params.get(k)]
        if missing:
            raise SignatureError(self.name, f"missing push parameter(s): {', '.join(missing)}")
        expected = sign(self.push_url, params, self._secret)
        if not hmac.compare_digest(expected.encode(), str(params["sig"]).encode()):
            raise SignatureError(self.name, "bad signature")
        if params["app_id"] != self._app_id:
            raise SignatureError(self.name, "push for another app_id")
        try:
            age = abs((now if now is not None else time.time()) - int(params["timestamp"]))
        except ValueError:
            raise SignatureError(self.name, f"bad timestamp {params['timestamp']!r}") from None
        if age > PUSH_WINDOW_S:
            raise SignatureError(self.name, f"stale timestamp: {int(age)} s from now (window {PUSH_WINDOW_S} s)")

    def push_params(self, query: Query[str, str], body: bytes) -> dict[str, str]:
        """The push's parameters: the query's and the form body's (the platform posts a urlencoded form)."""
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise MappingError(self.name, "body", body[:40], "push is not a urlencoded form") from None
        return {**dict(query), **form}

    def parse_push(self, query: Query[str, str], body: bytes) -> dict[str, Any]:
        """Verify and map a push: {kind, external_order_id, at} (+ the rider's fields for logistics)."""
        params = self.push_params(query, body)
        self.verify_push(params)
        return {**self.mapping.inbound("push", params), "params": params}

    # -- orders -----------------------------------------------------------------------------------
    def get_order(self, external_order_id: str) -> PlaceOrder:
        data = self._call("order_detail", {"order_id": external_order_id, "is_mt_logistics": "1"})
        if not isinstance(data, dict):
            raise MappingError(self.name, "data", None, "order detail answered without an order")
        return self.order_from(data)

    def order_from(self, data: dict[str, Any]) -> PlaceOrder:
        detail = data.get("detail")
        if isinstance(detail, str):            # the platform sends the lines as a JSON string
            try:
                detail = json.loads(detail)
            except ValueError:
                raise MappingError(self.name, "detail", detail[:40], "order lines are not JSON") from None
        f = self.mapping.inbound("order", {**data, "detail": detail}, self.binder)
        lines = tuple(OrderLine(sku=ln["sku"], qty=ln["qty"], unit_price_fen=ln["unit_price_fen"])
                      for ln in f["lines"])
        for i, line in enumerate(lines):
            if line.qty <= 0 or line.unit_price_fen < 0:
                raise MappingError(self.name, f"detail[{i}]", line.qty, "quantity must be positive, price not negative")
        kind = FulfillmentType(f["fulfillment"]["type"])
        address = None
        if kind is FulfillmentType.DELIVERY:
            a = f["address"]
            if a["lat"] is None or a["lng"] is None or not a["text"]:
                raise MappingError(self.name, "latitude", None, "a delivery order needs its address and coordinates")
            address = Address(text=a["text"], lat=a["lat"], lng=a["lng"], name=f["buyer"]["name"] or "",
                              phone=f["buyer"]["phone"] or "")
        return PlaceOrder(channel=self.channel, idempotency_key=f"{self.name}:{f['external_id']}",
                          external_id=f["external_id"], lines=lines,
                          buyer=Buyer(id=f["buyer"]["id"] or f"{self.name}:{f['external_id']}",
                                      name=f["buyer"]["name"] or "", phone=f["buyer"]["phone"] or ""),
                          fulfillment=Fulfillment(kind, store_id=f["store_id"], address=address),
                          status=f["status"], total_fen=f["total_fen"], rider=f.get("rider"),
                          channel_store=True)          # the platform chose the store: served there or refused

    def changed_orders(self, since: datetime, until: datetime, stores: tuple[str, ...],
                       page: str = "") -> OrderPage:
        """Every store's changed orders, a store at a time: `page` is "<store index>:<vernier>"."""
        index, _, vernier = page.partition(":")
        for i in range(int(index) if index.isdigit() else 0, len(stores)):
            if self.binder.to_external(self.name, "store", stores[i]) is None:
                vernier = ""                        # a store not listed on the platform has no orders there
                continue
            ids, vernier = self.store_changed_orders(stores[i], since, until, vernier)
            if vernier:                             # more of this store
                return OrderPage(tuple(ids), f"{i}:{vernier}")
            if ids:                                 # this store done: the next one next
                return OrderPage(tuple(ids), f"{i + 1}:" if i + 1 < len(stores) else "")
        return OrderPage(())

    def store_changed_orders(self, store_id: str, since: datetime, until: datetime,
                             cursor: str = "") -> tuple[list[str], str]:
        """One page of the store's order ids changed in [since, until): (ids, next cursor, "" at the end)."""
        poi = self._store(store_id)
        data = self._call("order_list", {"app_poi_code": poi, "start_time": str(int(since.timestamp())),
                                         "end_time": str(math.ceil(until.timestamp())), "page_size": "100",
                                         "vernier": cursor})
        if not isinstance(data, dict) or not isinstance(data.get("order_ids"), list):
            raise MappingError(self.name, "order_ids", None, "order list answered without ids")
        return [str(x) for x in data["order_ids"]], str(data.get("vernier") or "")

    def confirm_order(self, external_order_id: str) -> None:
        """order/confirm: the store takes the order (the platform then shows it accepted)."""
        self._call("order_confirm", {"order_id": external_order_id})

    def mark_picked(self, external_order_id: str) -> None:
        """order/preparationMealComplete: the store has picked; the rider may come."""
        self._call("order_picked", {"order_id": external_order_id})

    def cancel_order(self, external_order_id: str, cause: str, reason: str) -> None:
        """order/cancel: the store cannot fill the order (its cause as the mapping's reason_code); the platform
        cancels it and pays its buyer back. Answered ok when repeated."""
        try:
            code = self.mapping.value("cancel_reason", cause)
        except MappingError:
            code = self.mapping.value("cancel_reason", "other")
        self._call("order_cancel", {"order_id": external_order_id, "reason_code": str(code), "reason": reason[:200]})

    def call_platform_rider(self, external_order_id: str) -> None:
        """order/logistics/push: hand the order to the platform's own rider."""
        self._call("logistics_push", {"order_id": external_order_id})

    # -- riders: the platform's, reported; the store's, told -----------------------------------------
    def rider_report(self, push: dict[str, Any]) -> TrackingEvent:
        """A verified logistics push as a report on the platform's rider (the shipment is the platform's
        order id). Signed with the app secret, so it is the platform's word, not a claim to confirm."""
        params = push["params"]
        f = self.mapping.inbound("rider_report", params)
        order_id = push["external_order_id"]
        return TrackingEvent(carrier=self.name, shipment_ref=order_id, status=TrackingStatus(f["status"]),
                             at=f["at"], rider_name=f["rider_name"] or None, rider_phone=f["rider_phone"] or None,
                             rider_lat=f["rider_lat"], rider_lng=f["rider_lng"],
                             external_id=f"{order_id}:{params.get('logistics_status')}:{params.get('time')}")

    def sync_rider(self, external_order_id: str, status: str, rider_name: str | None, rider_phone: str | None,
                   lat: float | None, lng: float | None, carrier_ref: str | None = None) -> None:
        """ecommerce/order/logistics/sync: the store's own courier's rider, status and position (GCJ-02)."""
        try:
            code = self.mapping.value("rider_sync", status)
        except MappingError:
            return                          # a state the platform has no code for (problem, returning): not told
        self._call("logistics_sync", {
            "order_id": external_order_id, "third_carrier_order_id": carrier_ref, "courier_name": rider_name,
            "courier_phone": rider_phone, "logistics_status": str(code),
            "latitude": None if lat is None else f"{lat:.6f}", "longitude": None if lng is None else f"{lng:.6f}"})

    # -- after-sales: the platform asks, the hub answers --------------------------------------------
    def refund_request(self, push: dict[str, Any]) -> ChannelRefundRequest:
        """A verified part_refund (the lines in `food`, a JSON string) or refund (the whole order) push."""
        params = dict(push["params"])
        if push["kind"] == "part_refund":
            try:
                food = json.loads(params.get("food") or "")
            except ValueError:
                raise MappingError(self.name, "food", str(params.get("food"))[:40],
                                   "refund lines are not JSON") from None
            if not isinstance(food, list) or not food:
                raise MappingError(self.name, "food", food, "a part refund names its lines")
            params["food"] = food
        else:
            params.pop("food", None)                  # a whole-order refund: every line
        f = self.mapping.inbound("refund_request", params, self.binder)
        lines = None if f["lines"] is None else tuple((ln["sku"], ln["qty"]) for ln in f["lines"])
        return ChannelRefundRequest(channel=self.channel, refund_id=f["refund_id"],
                                    external_order_id=push["external_order_id"], lines=lines, reason=f["reason"] or "")

    def answer_refund(self, external_order_id: str, refund_id: str, agree: bool, reason: str) -> None:
        """order/refund/agree or /reject (a reason is required to reject); answered ok when repeated."""
        self._call("refund_agree" if agree else "refund_reject",
                   {"order_id": external_order_id, "refund_id": refund_id, "reason": reason[:200] or "同意"})

    # -- stock ------------------------------------------------------------------------------------
    def _store(self, store_id: str) -> str:
        poi = self.binder.to_external(self.name, "store", store_id)
        if poi is None:
            raise MappingError(self.name, "app_poi_code", store_id, "unmapped store")
        return poi

    def _sku(self, sku: str) -> str:
        code = self.binder.to_external(self.name, "sku", sku)
        if code is None:
            raise MappingError(self.name, "sku_id", sku, "unmapped sku")
        return code

    def update_store_stocks(self, store_id: str, figures: Iterable[tuple[str, int]]) -> None:
        """retail/sku/stock: absolute figures for many SKUs of one store in one call."""
        food_data = [{"app_food_code": self._sku(sku), "skus": [{"sku_id": self._sku(sku),
                                                                 "stock": str(max(int(n), 0))}]}
                     for sku, n in figures]
        self._call("stock_update", {"app_poi_code": self._store(store_id),
                                    "food_data": json.dumps(food_data, separators=(",", ":"))})

    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        self.update_store_stocks(store_id, [(sku, available)])

    def get_store_stock(self, sku: str, store_id: str) -> int:
        code = self._sku(sku)
        data = self._call("stock_get", {"app_poi_code": self._store(store_id), "app_food_code": code})
        try:
            [found] = [s for s in data["skus"] if str(s["sku_id"]) == code]
            return int(found["stock"] or 0)
        except (KeyError, TypeError, ValueError):
            raise MappingError(self.name, "skus", code, "retail/get answered without the sku's stock") from None

    def close(self) -> None:
        self.http.close()


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[ChannelStockPublisher] = MeituanConnector
_stock_batches_check: type[StoreStockBatches] = MeituanConnector
_riders_check: type[ChannelRiders] = MeituanConnector
_refunds_check: type[ChannelRefunds] = MeituanConnector
_callback_check: type[ChannelPushes] = MeituanConnector      # what its callback's handler calls
_refusal_check: type[ChannelOrderRefusal] = MeituanConnector
