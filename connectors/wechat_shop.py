"""WeChat Channels shop: order event pushes in, order details fetched, per-store stock out.

Pushes are verified with WeChat's message-push signature: sha1 over the sorted
concatenation of the push token, `timestamp` and `nonce`. A push only says "order X
changed"; the order itself is fetched with `order/get`, so a duplicate or late push is
harmless: the hub always acts on the order's current state.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping as Query
from datetime import datetime
from typing import Any, Self

from hub.config import SystemConfig
from hub.domain.model import Address, Buyer, Fulfillment, FulfillmentType, OrderLine, PlaceOrder
from hub.ports import AfterSale, ChannelAfterSales, ChannelDelivery, ChannelPushes, ChannelStockPublisher, OrderPage
from mappings import Mapping, load_mapping

from .base import Binder, MappingError, RetryPolicy, SignatureError
from .wechat_api import WeChatApi

PUSH_WINDOW_S = 300
LIST_WINDOW_S = 7 * 24 * 3600      # order/list/get: update_time_range at most 7 days
LIST_PAGE_SIZE = 100               # its page_size limit


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


class WeChatShopConnector:
    kind = "wechat_shop"
    role = "channel"
    callback = "channel_order_push"
    callback_accepted = "success"         # a plain-text `success`, as WeChat's message pushes expect
    pull_window_s = LIST_WINDOW_S
    takes_payment = True                  # its own checkout: the buyer pays the shop, which refunds too

    def __init__(self, name: str, mapping: Mapping, api: WeChatApi, push_token: str, binder: Binder,
                 retry: RetryPolicy, channel: str = "wechat_shop"):
        self.name, self.mapping, self.api = name, mapping, api
        self._push_token, self.binder, self.retry, self.channel = push_token, binder, retry, channel

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        mapping = load_mapping(name)
        api = WeChatApi(name, mapping, system.get("base_url"), system.get("app_id"), system.get("app_secret"),
                        timeout=float(system.get("timeout", 5.0)))
        return cls(name, mapping, api, system.get("push_token"), binder, retry, channel=system.get("channel", name))

    # -- pushes ---------------------------------------------------------------------------------
    def verify_push(self, query: Query[str, str], now: float | None = None) -> None:
        """Check the push signature and its timestamp; raises SignatureError with the reason."""
        missing = [k for k in ("signature", "timestamp", "nonce") if not query.get(k)]
        if missing:
            raise SignatureError(self.name, f"missing push signature parameter(s): {', '.join(missing)}")
        expected = push_signature(self._push_token, query["timestamp"], query["nonce"])
        if not hmac.compare_digest(expected.encode(), query["signature"].encode()):   # bytes: non-ASCII is just wrong
            raise SignatureError(self.name, "bad signature")
        try:
            age = abs((now if now is not None else time.time()) - int(query["timestamp"]))
        except ValueError:
            raise SignatureError(self.name, f"bad timestamp {query['timestamp']!r}") from None
        if age > PUSH_WINDOW_S:
            raise SignatureError(self.name, f"stale timestamp: {int(age)} s from now (window {PUSH_WINDOW_S} s)")

    def echo(self, query: Query[str, str]) -> str:
        """WeChat's server-address check (GET with `echostr`): answer echostr once verified."""
        self.verify_push(query)
        return query.get("echostr", "")

    def parse_push(self, query: Query[str, str], body: bytes) -> dict[str, Any]:
        """Verify and map an order event push: {event, external_order_id, at, after_sale_id}. Reply `success`.
        An after-sales push names its order inside `finder_shop_aftersale_status_update`."""
        self.verify_push(query)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise MappingError(self.name, "body", body[:40], "push is not JSON") from None
        if not isinstance(payload, dict):
            raise MappingError(self.name, "body", type(payload).__name__, "push is not an object")
        push = self.mapping.inbound("push", payload)
        of_after_sale = push.pop("after_sale_order_id", None)
        push["external_order_id"] = push["external_order_id"] or of_after_sale
        if not push["external_order_id"]:
            raise MappingError(self.name, "order_info.order_id", None,
                               "missing required field: the push names no order")
        return push

    # -- orders ---------------------------------------------------------------------------------
    def get_order(self, external_order_id: str) -> PlaceOrder:
        answer = self.retry.call(self.api.post, "order_get", {"order_id": external_order_id})
        if not isinstance(answer.get("order"), dict):
            raise MappingError(self.name, "order", None, "order/get answered without an order")
        f = self.mapping.inbound("order", answer["order"], self.binder)
        lines = tuple(OrderLine(sku=ln["sku"], qty=ln["qty"], unit_price_fen=ln["unit_price_fen"])
                      for ln in f["lines"])
        for i, line in enumerate(lines):
            if line.qty <= 0 or line.unit_price_fen < 0:
                raise MappingError(self.name, f"order_detail.product_infos[{i}]", line.qty,
                                   "quantity must be positive and price not negative")
        kind = FulfillmentType(f["fulfillment"]["type"])
        store_id = f["fulfillment"]["store_id"]
        if kind is FulfillmentType.PICKUP and not store_id:
            raise MappingError(self.name, "order_detail.ext_info.o2o_store_id", None,
                               "a pickup order names no store")
        address = self._address(f["address"], kind)
        return PlaceOrder(channel=self.channel, idempotency_key=f"{self.name}:{f['external_id']}",
                          external_id=f["external_id"], lines=lines,
                          buyer=Buyer(id=f["buyer"]["id"], name=f["buyer"]["name"] or "",
                                      phone=f["buyer"]["phone"] or ""),
                          fulfillment=Fulfillment(kind, store_id=store_id, address=address),
                          status=f["status"], total_fen=f["total_fen"])

    def changed_orders(self, since: datetime, until: datetime, stores: tuple[str, ...] = (),
                       page: str = "") -> OrderPage:
        """order/list/get by update time (the shop's orders, every store at once), paged by `next_key`."""
        body: dict[str, Any] = {"update_time_range": {"start_time": int(since.timestamp()),
                                                      "end_time": math.ceil(until.timestamp())},
                                "page_size": LIST_PAGE_SIZE}
        if page:
            body["next_key"] = page
        answer = self.retry.call(self.api.post, "order_list", body)
        ids = answer.get("order_id_list")
        if not isinstance(ids, list):
            raise MappingError(self.name, "order_id_list", None, "order/list/get answered without a list")
        more = bool(answer.get("has_more")) and bool(answer.get("next_key"))
        return OrderPage(tuple(str(i) for i in ids), str(answer["next_key"]) if more else "")

    def _address(self, a: dict[str, Any], kind: FulfillmentType) -> Address | None:
        text = "".join(a[k] or "" for k in ("province", "city", "county", "detail"))
        if kind is FulfillmentType.PICKUP or not text:
            if kind is not FulfillmentType.PICKUP:
                raise MappingError(self.name, "order_detail.delivery_info.address_info", None,
                                   f"a {kind} order needs an address")
            return None
        if kind is FulfillmentType.DELIVERY and (a["lat"] is None or a["lng"] is None):
            raise MappingError(self.name, "order_detail.delivery_info.address_info.lat", None,
                               "nearby delivery needs the address's coordinates")
        # Express needs no coordinates: 0.0 stands for "not given" there.
        return Address(text=text, lat=a["lat"] or 0.0, lng=a["lng"] or 0.0, name=a["name"] or "",
                       phone=a["phone"] or "")

    # -- delivery and after-sales ----------------------------------------------------------------
    def send_delivery(self, external_order_id: str, delivery: ChannelDelivery) -> None:
        """order/delivery/send: the whole order in one package, its waybill (a rider: the courier's order
        number) under the carrier's delivery_id (`delivery_company` in the mapping); deliver_type 1, the
        merchant's own shipping. The shop answers a repeat of the same delivery ok (README)."""
        infos = []
        for sku, qty in delivery.lines:
            product_id = self.binder.to_external(self.name, "product", sku)
            sku_id = self.binder.to_external(self.name, "sku", sku)
            if product_id is None or sku_id is None:
                raise MappingError(self.name, "product_infos.sku_id", sku, "unmapped sku")
            infos.append({"product_id": product_id, "sku_id": sku_id, "product_cnt": int(qty)})
        body = {"order_id": external_order_id,
                "delivery_list": [{"delivery_id": self.mapping.value("delivery_company", delivery.company, "out"),
                                   "waybill_id": delivery.waybill, "deliver_type": 1, "product_infos": infos}]}
        self.retry.call(self.api.post, "delivery_send", body)

    def get_after_sale(self, after_sale_id: str) -> AfterSale:
        answer = self.retry.call(self.api.post, "aftersale_get", {"after_sale_order_id": after_sale_id})
        if not isinstance(answer.get("after_sale_order"), dict):
            raise MappingError(self.name, "after_sale_order", None, "getaftersaleorder answered without one")
        f = self.mapping.inbound("after_sale", answer["after_sale_order"])
        if f["amount_fen"] < 0:
            raise MappingError(self.name, "refund_info.amount", f["amount_fen"], "a negative refund")
        return AfterSale(after_sale_id=f["after_sale_id"], external_order_id=f["order_id"], kind=f["kind"],
                         status=f["status"], amount_fen=f["amount_fen"], reason=f["reason"] or "")

    def accept_after_sale(self, after_sale_id: str) -> None:
        """aftersale/acceptapply: a refund is paid to the buyer by the shop; a return is agreed first."""
        self.retry.call(self.api.post, "aftersale_accept", {"after_sale_order_id": after_sale_id})

    def reject_after_sale(self, after_sale_id: str, reason: str) -> None:
        self.retry.call(self.api.post, "aftersale_reject", {"after_sale_order_id": after_sale_id,
                                                            "reject_reason": reason[:200]})

    # -- stock ----------------------------------------------------------------------------------
    def update_store_stock(self, sku: str, store_id: str, available: int) -> None:
        """Set what the shop may sell of `sku` from `store_id` (diff_type 3: an absolute figure,
        so a retried or reordered update cannot double-count)."""
        body = self.mapping.outbound("stock", {"product": sku, "sku": sku, "store_id": store_id,
                                               "mode": "set", "qty": max(int(available), 0)}, self.binder)
        self.retry.call(self.api.post, "stock_update", body)

    def get_store_stock(self, sku: str, store_id: str) -> int:
        body = self.mapping.outbound("stock", {"product": sku, "sku": sku, "store_id": store_id}, self.binder)
        answer = self.retry.call(self.api.post, "stock_get", body)
        try:
            return int(answer["num"])
        except (KeyError, TypeError, ValueError):
            raise MappingError(self.name, "num", answer.get("num"), "stock/get answered without a number") \
                from None

    def close(self) -> None:
        self.api.http.close()





# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[ChannelStockPublisher] = WeChatShopConnector
_after_sales_check: type[ChannelAfterSales] = WeChatShopConnector
_callback_check: type[ChannelPushes] = WeChatShopConnector      # what its callback's handler calls
