"""WeChat Channels shop simulator: access tokens, order/get from seeded orders, per-store
stock (keyed by product, sku and out_warehouse_id) with every update recorded, and
signed order-event pushes to the hub.

The shop's ids differ from the hub's on purpose (`shop_ids`, STORE_WAREHOUSES), so the
connector's cross-reference through the binder is really exercised.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, Self

import requests

from connectors.base import Binder

from .base import Request, Response, SandboxSystem, Simulator
from .wechat_tokens import TokenIssuer

SYSTEM = "wechat_shop"
STORE_WAREHOUSES = {"S001": "wh_jingan_0001", "S002": "wh_xujiahui_0002", "S003": "wh_lujiazui_0003"}
# Error codes this simulator answers beyond WeChat's common ones (stand-ins, see README).
ERR_NO_ORDER, ERR_NO_PRODUCT, ERR_NO_WAREHOUSE, ERR_BAD_ARGS = 10020060, 10020050, 10020064, 47001
ERR_ORDER_STATE, ERR_NO_COMPANY = 10020062, 10025102             # not awaiting delivery; unknown delivery_id
ERR_NO_AFTER_SALE, ERR_AFTER_SALE_STATE = 10021050, 10020001    # WeChat's own after-sales codes
COMPANIES = {"SF", "ZTO", "YTO", "STO", "YD", "JD", "EMS", "DADA", "SFTC"}
LIST_WINDOW_S = 7 * 24 * 3600          # order/list/get's longest update_time_range


def shop_ids(sku: str) -> tuple[str, str]:
    """The shop's (product_id, sku_id) for a hub SKU in the sandbox: one product per SKU."""
    n = int(hashlib.sha1(sku.encode()).hexdigest()[:8], 16)
    return str(10_000_000_000 + n), str(20_000_000_000 + n)


def sandbox_bindings(skus: Iterable[str], stores: dict[str, str] | None = None,
                     system: str = SYSTEM) -> list[tuple[str, str, str, str]]:
    """(system, kind, external_id, internal_id) rows binding hub SKUs and stores to the shop's ids."""
    rows = []
    for sku in skus:
        product_id, sku_id = shop_ids(sku)
        rows += [(system, "sku", sku_id, sku), (system, "product", product_id, sku)]
    for store, warehouse in (stores or STORE_WAREHOUSES).items():
        rows.append((system, "store", warehouse, store))
    return rows


def seed_binder(binder: Binder, skus: Iterable[str], stores: dict[str, str] | None = None,
                system: str = SYSTEM) -> Binder:
    for row in sandbox_bindings(skus, stores, system):
        binder.bind(*row)
    return binder


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    # Written out here too: the simulator must not borrow the connector's code to check it.
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


class WeChatShopSimulator(Simulator):
    name = "wechat_shop"

    def __init__(self, *, app_id: str, app_secret: str, push_token: str, port: int = 0,
                 host: str = "127.0.0.1", warehouses: Iterable[str] = STORE_WAREHOUSES.values()):
        self.app_id, self.push_token = app_id, push_token
        self.tokens = TokenIssuer(app_id, app_secret)
        self.warehouses = set(warehouses)
        self.products: dict[str, set[str]] = {}              # product_id -> sku_ids
        self.stock: dict[tuple[str, str, str], int] = {}     # (product_id, sku_id, warehouse) -> num
        self.stock_updates: list[dict[str, Any]] = []
        # Called with each stock update's body before it is applied (outside the lock): a test holds one
        # push there until another has landed, to make pushes land in the order it means to.
        self.before_stock_update: Callable[[dict[str, Any]], None] | None = None
        self.orders: dict[str, dict[str, Any]] = {}
        self.pushes: list[tuple[str, str, int]] = []         # (event, order_id, hub's HTTP status; 0: never arrived)
        self.drop_pushes = False                             # pushes lost on the way (a network split)
        self.deliveries: list[dict[str, Any]] = []           # each delivery/send that changed an order
        self.after_sales: dict[str, dict[str, Any]] = {}
        self.after_sale_calls: list[tuple[str, str]] = []    # (accept | reject, after_sale_order_id) applied
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(app_id=env["HUB_WECHAT_APP_ID"], app_secret=env["HUB_WECHAT_APP_SECRET"],
                   push_token=env["HUB_WECHAT_PUSH_TOKEN"], port=port)

    def setup_routes(self) -> None:
        self.route("GET", "/cgi-bin/token", self.tokens.handle)
        self.route("POST", "/channels/ec/order/get", self._authed(self._order_get))
        self.route("POST", "/channels/ec/order/list/get", self._authed(self._order_list))
        self.route("POST", "/channels/ec/order/delivery/send", self._authed(self._delivery_send))
        self.route("POST", "/channels/ec/aftersale/getaftersaleorder", self._authed(self._after_sale_get))
        self.route("POST", "/channels/ec/aftersale/acceptapply", self._authed(self._after_sale_answer("accept")))
        self.route("POST", "/channels/ec/aftersale/rejectapply", self._authed(self._after_sale_answer("reject")))
        self.route("POST", "/channels/ec/warehouse/stock/update", self._authed(self._stock_update))
        self.route("POST", "/channels/ec/warehouse/stock/get", self._authed(self._stock_get))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.stock.clear()
            self.stock_updates.clear()
            self.orders.clear()
            self.pushes.clear()
            self.before_stock_update = None
            self.drop_pushes = False
            self.deliveries.clear()
            self.after_sales.clear()
            self.after_sale_calls.clear()

    # -- seeding and reading, in hub terms ----------------------------------------------------
    def seed_catalog(self, skus: Iterable[str]) -> None:
        for sku in skus:
            product_id, sku_id = shop_ids(sku)
            self.products.setdefault(product_id, set()).add(sku_id)

    def stock_of(self, sku: str, store_id: str) -> int | None:
        """The shop's current figure for a hub SKU at a hub store (None if never set)."""
        product_id, sku_id = shop_ids(sku)
        return self.stock.get((product_id, sku_id, STORE_WAREHOUSES[store_id]))

    def last_update(self, sku: str, store_id: str) -> dict[str, Any] | None:
        product_id, sku_id = shop_ids(sku)
        wanted = (product_id, sku_id, STORE_WAREHOUSES[store_id])
        for update in reversed(self.stock_updates):
            if (update["product_id"], update["sku_id"], update["out_warehouse_id"]) == wanted:
                return update
        return None

    def seed_order(self, order_id: str, lines: list[tuple[str, int, int]], *, status: int = 20,
                   openid: str = "oSandboxBuyer", fulfillment: str | None = None, store_id: str | None = None,
                   address: dict[str, Any] | None = None, at: int | None = None) -> dict[str, Any]:
        """Put an order in the shop, as order/get will answer it (and order/list/get lists it by its update
        time, `at` or now). `lines`: (hub sku, qty, price fen)."""
        infos = []
        for sku, qty, price in lines:
            product_id, sku_id = shop_ids(sku)
            infos.append({"product_id": product_id, "sku_id": sku_id, "sku_cnt": qty, "sale_price": price,
                          "market_price": price, "title": sku, "real_price": price * qty,
                          "thumb_img": "", "sku_attrs": [], "on_aftersale_sku_cnt": 0})
        address_info = address or {"user_name": "Li Lei", "tel_number": "13800000000", "province_name": "上海市",
                                   "city_name": "上海市", "county_name": "静安区", "detail_info": "南京西路1号",
                                   "postal_code": "200040", "lat": 31.2301, "lng": 121.4490}
        ext: dict[str, Any] = {"customer_notes": "", "merchant_notes": ""}
        if fulfillment:
            ext["o2o_fulfillment"] = fulfillment
        if store_id:
            ext["o2o_store_id"] = STORE_WAREHOUSES.get(store_id, store_id)
        total = sum(q * p for _, q, p in lines)
        now = at if at is not None else int(time.time())
        order = {"order_id": order_id, "status": status, "create_time": now, "update_time": now,
                 "openid": openid, "unionid": "",
                 "order_detail": {"product_infos": infos,
                                  "price_info": {"product_price": total, "order_price": total, "freight": 0,
                                                 "discounted_price": 0},
                                  "pay_info": {"prepay_id": "", "transaction_id": "", "pay_time": now},
                                  "delivery_info": {"address_info": address_info, "deliver_method": 0,
                                                    "delivery_product_info": []},
                                  "ext_info": ext}}
        with self._lock:
            self.orders[order_id] = order
        return order

    def set_status(self, order_id: str, status: int) -> None:
        """The order moves in the shop (paid, cancelled, ...): its update time is now."""
        with self._lock:
            self.orders[order_id].update(status=status, update_time=int(time.time()))

    def seed_after_sale(self, after_sale_id: str, order_id: str, amount_fen: int, *, kind: str = "REFUND",
                        reason: str = "不想要了") -> dict[str, Any]:
        """A buyer's after-sales request on an order, waiting for the merchant (MERCHANT_PROCESSING)."""
        order = self.orders[order_id]
        first = order["order_detail"]["product_infos"][0]
        now = int(time.time())
        sale = {"after_sale_order_id": after_sale_id, "status": "MERCHANT_PROCESSING", "openid": order["openid"],
                "order_id": order_id, "type": kind, "reason": "1", "reason_text": reason,
                "product_info": {"product_id": first["product_id"], "sku_id": first["sku_id"],
                                 "count": first["sku_cnt"]},
                "refund_info": {"amount": amount_fen}, "create_time": now, "update_time": now}
        with self._lock:
            self.after_sales[after_sale_id] = sale
        return sale

    def after_sale_body(self, after_sale_id: str) -> bytes:
        sale = self.after_sales[after_sale_id]
        return json.dumps({"ToUserName": "gh_sandboxshop", "FromUserName": "oSandboxBuyer",
                           "CreateTime": int(time.time()), "MsgType": "event", "Event": "channels_ec_aftersale_update",
                           "finder_shop_aftersale_status_update": {"status": sale["status"],
                                                                   "after_sale_order_id": after_sale_id,
                                                                   "order_id": sale["order_id"]}}).encode()

    # -- the shop calling the hub -------------------------------------------------------------
    def signed_query(self, timestamp: int | None = None) -> dict[str, str]:
        ts, nonce = str(timestamp if timestamp is not None else int(time.time())), secrets.token_hex(5)
        return {"signature": push_signature(self.push_token, ts, nonce), "timestamp": ts, "nonce": nonce}

    def push_body(self, event: str, external_order_id: str) -> bytes:
        body = {"ToUserName": "gh_sandboxshop", "FromUserName": "oSandboxBuyer", "CreateTime": int(time.time()),
                "MsgType": "event", "Event": event,
                "order_info": {"order_id": int(external_order_id) if external_order_id.isdigit()
                               else external_order_id}}
        return json.dumps(body).encode()

    def push_event(self, url: str, event: str, external_order_id: str) -> requests.Response | None:
        """Push `channels_ec_<event>` (or a full event name) for an order, signed. With
        faults.duplicate_callbacks the push goes twice, as WeChat retries when unsure. None when the push
        never arrived (`drop_pushes`, or nothing listening): the order stays in the shop, listed by
        order/list/get."""
        event = event if event.startswith("channels_ec_") else f"channels_ec_{event}"
        body = self.push_body(event, external_order_id)
        first = None
        for _ in range(2 if self.faults.duplicate_callbacks else 1):
            try:
                if self.drop_pushes:
                    raise requests.ConnectionError("push dropped")
                resp = requests.post(url, params=self.signed_query(), data=body,
                                     headers={"Content-Type": "application/json"}, timeout=10)
            except requests.ConnectionError:     # the hub away or the push lost: the shop keeps the order
                with self._lock:
                    self.pushes.append((event, external_order_id, 0))
                return None
            with self._lock:
                self.pushes.append((event, external_order_id, resp.status_code))
            first = first or resp
        return first

    # -- the hub calling the shop -------------------------------------------------------------
    def _authed(self, handler):
        def wrapped(req: Request) -> Response:
            refused = self.tokens.refuse(req)
            if refused:
                return refused
            try:
                body = req.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "data format error"})
            return handler(body)
        return wrapped

    def _order_get(self, body: dict[str, Any]) -> Response:
        order = self.orders.get(str(body.get("order_id")))
        if order is None:
            return Response(200, {"errcode": ERR_NO_ORDER, "errmsg": "order not exist"})
        return Response(200, {"errcode": 0, "errmsg": "ok", "order": order})

    def _order_list(self, body: dict[str, Any]) -> Response:
        """order/list/get by update_time_range (at most 7 days, [start, end)), oldest first; `next_key` is the
        offset of the next page (a sandbox convention: the real key is opaque)."""
        window = body.get("update_time_range")
        size, key = body.get("page_size", 10), str(body.get("next_key") or "0")
        if not isinstance(window, dict) or not all(isinstance(window.get(k), int) for k in ("start_time", "end_time")) \
                or not 0 <= window["end_time"] - window["start_time"] <= LIST_WINDOW_S \
                or not isinstance(size, int) or not 1 <= size <= 100 or not key.isdigit():
            return Response(200, {"errcode": ERR_BAD_ARGS,
                                  "errmsg": "invalid update_time_range, page_size or next_key"})
        start, end, offset = window["start_time"], window["end_time"], int(key)
        with self._lock:
            found = sorted((o["update_time"], o["order_id"]) for o in self.orders.values()
                           if start <= o["update_time"] < end)
        page = [oid for _, oid in found[offset:offset + size]]
        more = offset + size < len(found)
        return Response(200, {"errcode": 0, "errmsg": "ok", "order_id_list": page,
                              "next_key": str(offset + size) if more else "", "has_more": more})

    def _delivery_send(self, body: dict[str, Any]) -> Response:
        """order/delivery/send: lines of a paid order (20, 21), under a known delivery_id; the order is then
        awaiting receipt (30; 21 when some units did not go). The same delivery sent again is answered ok and
        changes nothing; another waybill for a shipped order replaces the first (the shop's delivery-info
        update, folded in here)."""
        order = self.orders.get(str(body.get("order_id")))
        packages = body.get("delivery_list")
        if order is None:
            return Response(200, {"errcode": ERR_NO_ORDER, "errmsg": "order not exist"})
        if not isinstance(packages, list) or not packages or not all(isinstance(p, dict) for p in packages):
            return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "invalid delivery_list"})
        wanted = {(i["product_id"], i["sku_id"]): i["sku_cnt"] for i in order["order_detail"]["product_infos"]}
        sent: dict[tuple[str, str], int] = {}
        for p in packages:
            if p.get("delivery_id") not in COMPANIES:
                return Response(200, {"errcode": ERR_NO_COMPANY, "errmsg": "不支持该快递公司"})
            if not p.get("waybill_id") or p.get("deliver_type") not in (1, 2, 3, 4):
                return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "invalid waybill_id or deliver_type"})
            for info in p.get("product_infos") or []:
                key = (str(info.get("product_id")), str(info.get("sku_id")))
                sent[key] = sent.get(key, 0) + int(info.get("product_cnt") or 0)
        if not sent or any(key not in wanted or not 0 < n <= wanted[key] for key, n in sent.items()):
            return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "product_infos do not match the order"})
        with self._lock:
            current = order["order_detail"]["delivery_info"]["delivery_product_info"]
            told = [{k: p[k] for k in ("delivery_id", "waybill_id", "deliver_type")} for p in packages]
            if current == told:
                return Response(200, {"errcode": 0, "errmsg": "ok"})
            if order["status"] not in (20, 21, 30):
                return Response(200, {"errcode": ERR_ORDER_STATE, "errmsg": "order status not allowed"})
            order["order_detail"]["delivery_info"]["delivery_product_info"] = told
            order.update(status=30 if sent == wanted else 21, update_time=int(time.time()))   # 21: part shipped
            self.deliveries.append(dict(body))
        return Response(200, {"errcode": 0, "errmsg": "ok"})

    def _after_sale_get(self, body: dict[str, Any]) -> Response:
        sale = self.after_sales.get(str(body.get("after_sale_order_id")))
        if sale is None:
            return Response(200, {"errcode": ERR_NO_AFTER_SALE, "errmsg": "售后单不存在"})
        return Response(200, {"errcode": 0, "errmsg": "ok", "after_sale_order": sale})

    def _after_sale_answer(self, verb: str):
        def handler(body: dict[str, Any]) -> Response:
            """acceptapply: a refund paid back at once (a return: the buyer is asked to send the goods);
            rejectapply. The same answer again is ok and changes nothing (README); the other one is refused."""
            after_sale_id = str(body.get("after_sale_order_id"))
            with self._lock:
                sale = self.after_sales.get(after_sale_id)
                if sale is None:
                    return Response(200, {"errcode": ERR_NO_AFTER_SALE, "errmsg": "售后单不存在"})
                if (verb, after_sale_id) in self.after_sale_calls:
                    return Response(200, {"errcode": 0, "errmsg": "ok"})
                if sale["status"] != "MERCHANT_PROCESSING":
                    return Response(200, {"errcode": ERR_AFTER_SALE_STATE, "errmsg": "售后单状态不合法"})
                if verb == "reject" and not body.get("reject_reason"):
                    return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "reject_reason required"})
                self.after_sale_calls.append((verb, after_sale_id))
                now = int(time.time())
                if verb == "reject":
                    sale.update(status="MERCHANT_REJECT_REFUND" if sale["type"] == "REFUND"
                                else "MERCHANT_REJECT_RETURN", update_time=now)
                elif sale["type"] == "RETURN":
                    sale.update(status="USER_WAIT_RETURN", update_time=now)
                else:
                    sale.update(status="MERCHANT_REFUND_SUCCESS", update_time=now)
                    order = self.orders[sale["order_id"]]
                    back = sum(s["refund_info"]["amount"] for s in self.after_sales.values()
                               if s["order_id"] == sale["order_id"] and s["status"] == "MERCHANT_REFUND_SUCCESS")
                    if back >= order["order_detail"]["price_info"]["order_price"]:
                        order.update(status=200, update_time=now)     # every fen back: the order ends refunded
            return Response(200, {"errcode": 0, "errmsg": "ok"})
        return handler

    def _known(self, body: dict[str, Any]) -> Response | None:
        product_id, sku_id = str(body.get("product_id")), str(body.get("sku_id"))
        sandbox_pair = product_id.isdigit() and sku_id.isdigit() and \
            int(sku_id) - int(product_id) == 10_000_000_000      # any SKU under the sandbox scheme
        if not (sandbox_pair or sku_id in self.products.get(product_id, ())):
            return Response(200, {"errcode": ERR_NO_PRODUCT, "errmsg": "product or sku not exist"})
        if body.get("out_warehouse_id") not in self.warehouses:
            return Response(200, {"errcode": ERR_NO_WAREHOUSE, "errmsg": "warehouse not exist"})
        return None

    def _stock_update(self, body: dict[str, Any]) -> Response:
        refused = self._known(body)
        if refused:
            return refused
        if self.before_stock_update is not None:
            self.before_stock_update(body)
        num, diff_type = body.get("num"), body.get("diff_type")
        if not isinstance(num, int) or isinstance(num, bool) or num < 0 or diff_type not in (1, 2, 3):
            return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "invalid num or diff_type"})
        key = (str(body["product_id"]), str(body["sku_id"]), body["out_warehouse_id"])
        with self._lock:
            held = self.stock.get(key, 0)
            new = {1: held + num, 2: held - num, 3: num}[diff_type]
            if new < 0:
                return Response(200, {"errcode": ERR_BAD_ARGS, "errmsg": "stock would go below zero"})
            self.stock[key] = new
            self.stock_updates.append(dict(body))
        return Response(200, {"errcode": 0, "errmsg": "ok"})

    def _stock_get(self, body: dict[str, Any]) -> Response:
        refused = self._known(body)
        if refused:
            return refused
        key = (str(body["product_id"]), str(body["sku_id"]), body["out_warehouse_id"])
        return Response(200, {"errcode": 0, "errmsg": "ok", "num": self.stock.get(key, 0)})


SANDBOX = SandboxSystem(
    "wechat_shop", WeChatShopSimulator, 8704, "HUB_WECHAT_SHOP_URL",
    credentials={"HUB_WECHAT_APP_ID": "wxsandbox0001", "HUB_WECHAT_APP_SECRET": "sandbox-wechat-app-secret",
                 "HUB_WECHAT_PUSH_TOKEN": "sandboxpushtoken",
                 "HUB_CHANNEL_WECHAT_SHOP_KEY": "sandbox-wechat-shop-key-01"},
    bind=seed_binder, prepare=lambda sim, skus: sim.seed_catalog(skus))   # the shop lists the SKUs
