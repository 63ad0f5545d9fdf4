"""Meituan 闪购-style instant-retail platform simulator: signed calls checked, per-store stock by batch,
orders seeded then read by their detail query and listed by page, accept / pick complete / the
platform's rider, and signed pushes to the hub.

The platform's ids differ from the hub's on purpose (`POI_CODES`, `platform_sku`), so the connector's
cross-reference through the binder is really exercised. What the simulator assumes where the public
material is unclear is in README.md ("The Meituan simulator assumes").
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from typing import Any, Self

import requests

from connectors.base import Binder

from .base import Request, Response, SandboxSystem, Simulator

SYSTEM = "meituan"
POI_CODES = {"S001": "t_4987001", "S002": "t_4987002", "S003": "t_4987003"}
ERR_SIG, ERR_PARAM, ERR_NO_ORDER, ERR_STATE = 703, 701, 808, 806     # stand-ins, see README
PUSH_WINDOW_S = 300
FOODS_PER_STOCK_CALL = 200                  # retail/sku/stock's food_data limit (as we read the open platform)


SKU_PREFIX = "mt-"


def platform_sku(sku: str, prefix: str = SKU_PREFIX) -> str:
    return f"{prefix}{sku.lower()}"


def sandbox_bindings(skus: Iterable[str], system: str = SYSTEM, poi_codes: dict[str, str] | None = None,
                     sku_prefix: str = SKU_PREFIX) -> list[tuple[str, str, str, str]]:
    rows = [(system, "sku", platform_sku(sku, sku_prefix), sku) for sku in skus]
    return rows + [(system, "store", poi, store) for store, poi in (poi_codes or POI_CODES).items()]


def seed_binder(binder: Binder, skus: Iterable[str], system: str = SYSTEM, poi_codes: dict[str, str] | None = None,
                sku_prefix: str = SKU_PREFIX) -> Binder:
    for row in sandbox_bindings(skus, system, poi_codes, sku_prefix):
        binder.bind(*row)
    return binder


def sign(url: str, params: dict[str, Any], secret: str) -> str:
    # Written out here too: the simulator must not borrow the connector's code to check it.
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sig")
    return hashlib.md5(f"{url}?{text}{secret}".encode()).hexdigest()


class MeituanSimulator(Simulator):
    name = "meituan"

    def __init__(self, *, app_id: str, app_secret: str, port: int = 0, host: str = "127.0.0.1",
                 prefix: str = "/api/v1", poi_codes: dict[str, str] | None = None, sku_prefix: str = SKU_PREFIX):
        """Another platform of this kind is another instance: its own credentials, its calls under its own
        `prefix`, its own store codes and SKU ids (bind them with `seed_binder(..., poi_codes, sku_prefix)`)."""
        self.app_id, self.app_secret, self.prefix = app_id, app_secret, prefix.rstrip("/")
        self.poi_codes, self.sku_prefix = dict(poi_codes or POI_CODES), sku_prefix
        self.stock: dict[tuple[str, str], int] = {}            # (app_poi_code, sku_id) -> stock
        self.stock_calls: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []                 # (operation, order_id) of order calls
        self.pushes: list[tuple[str, str, int]] = []           # (push_type, order_id, hub's HTTP status)
        self.drop_pushes = False                               # a push lost on the way (network split)
        self.rider_syncs: list[dict[str, str]] = []            # logistics/sync calls taken (the store's courier)
        self.refunds: dict[str, dict[str, Any]] = {}            # refund_id -> the buyer's request and its answer
        self.cancels: dict[str, dict[str, str]] = {}            # order_id -> order/cancel (reason_code, reason)
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(app_id=env["HUB_MEITUAN_APP_ID"], app_secret=env["HUB_MEITUAN_APP_SECRET"], port=port)

    def setup_routes(self) -> None:
        routes = {"/retail/sku/stock": self._stock_update, "/retail/get": self._stock_get,
                  "/ecommerce/order/getOrderDetail": self._order_detail,
                  "/ecommerce/order/getOrderIdByPage": self._order_list,
                  "/order/confirm": self._step("confirm", {2, 3}, 4),
                  "/order/preparationMealComplete": self._step("picked", {4}, None),
                  "/order/logistics/push": self._step("logistics_push", {4}, None),
                  "/order/cancel": self._cancel}
        routes |= self.rider_routes()
        for path, handler in routes.items():
            self.route("POST", self.prefix + path, self._signed(self.prefix + path, handler))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.stock.clear()
            self.stock_calls.clear()
            self.orders.clear()
            self.calls.clear()
            self.pushes.clear()
            self.drop_pushes = False
            self.rider_syncs.clear()
            self.refunds.clear()
            self.cancels.clear()

    # -- seeding and reading, in hub terms ------------------------------------------------------
    def stock_of(self, sku: str, store_id: str) -> int | None:
        return self.stock.get((self.poi_codes[store_id], self.sku_id(sku)))

    def sku_id(self, sku: str) -> str:
        return platform_sku(sku, self.sku_prefix)

    def seed_order(self, order_id: str, lines: list[tuple[str, int, int]], store_id: str = "S001", *,
                   status: int = 2, pick_type: int = 0, at: int | None = None,
                   logistics_code: str = "1001") -> dict[str, Any]:
        """An order as the detail query answers it. `lines`: (hub sku, qty, unit price in fen)."""
        detail = [{"app_food_code": self.sku_id(sku), "sku_id": self.sku_id(sku), "food_name": sku,
                   "quantity": qty, "price": price / 100, "box_num": 0, "box_price": 0, "unit": "份"}
                  for sku, qty, price in lines]
        now = at if at is not None else int(time.time())
        order = {"order_id": int(order_id), "wm_order_id_view": order_id, "app_poi_code": self.poi_codes[store_id],
                 "status": status, "ctime": now, "utime": now, "user_id": 90000 + int(order_id) % 1000,
                 "recipient_name": "韩梅梅", "recipient_phone": "13900000000",
                 "recipient_address": "上海市静安区华山路100号", "latitude": 31.2250, "longitude": 121.4450,
                 "total": sum(q * p for _, q, p in lines) / 100, "shipping_fee": 0, "pick_type": pick_type,
                 "logistics_code": logistics_code, "detail": json.dumps(detail, ensure_ascii=False),
                 "day_seq": len(self.orders) + 1}
        with self._lock:
            self.orders[order_id] = order
        return order

    def set_status(self, order_id: str, status: int) -> None:
        with self._lock:
            self.orders[order_id].update(status=status, utime=int(time.time()))

    # -- the platform calling the hub ----------------------------------------------------------
    def push_params(self, push_url: str, order_id: str, push_type: str = "order", **extra: Any) -> dict[str, str]:
        order = self.orders.get(order_id, {})
        params = {"app_id": self.app_id, "timestamp": str(int(time.time())), "order_id": order_id,
                  "push_type": push_type, "status": str(order.get("status", "")),
                  "app_poi_code": str(order.get("app_poi_code", "")), **{k: str(v) for k, v in extra.items()}}
        params["sig"] = sign(push_url, params, self.app_secret)
        return params

    def push(self, push_url: str, order_id: str, push_type: str = "order", **extra: Any) -> requests.Response | None:
        """A signed urlencoded push to the hub (None when `drop_pushes` or nobody listens: it never arrives)."""
        if self.drop_pushes:
            with self._lock:
                self.pushes.append((push_type, order_id, 0))
            return None
        try:
            resp = requests.post(push_url, data=self.push_params(push_url, order_id, push_type, **extra), timeout=10)
        except requests.ConnectionError:          # nothing listening: the order stays, listed by the query
            with self._lock:
                self.pushes.append((push_type, order_id, 0))
            return None
        with self._lock:
            self.pushes.append((push_type, order_id, resp.status_code))
        return resp

    # -- the hub calling the platform ----------------------------------------------------------
    def _signed(self, path: str, handler: Any) -> Any:
        def wrapped(req: Request) -> Response:
            params = {k: v[-1] for k, v in req.query.items()}
            try:
                params.update(req.form())
            except UnicodeDecodeError:
                return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "参数错误"}})
            if params.get("app_id") != self.app_id or \
                    params.get("sig") != sign(self.base_url + path, params, self.app_secret):
                return Response(200, {"data": "ng", "error": {"code": ERR_SIG, "msg": "签名验证错误"}})
            if not params.get("timestamp", "").isdigit() or \
                    abs(time.time() - int(params["timestamp"])) > PUSH_WINDOW_S:
                return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "timestamp 过期"}})
            return handler(params)
        return wrapped

    def _stock_update(self, p: dict[str, str]) -> Response:
        try:
            foods = json.loads(p["food_data"])
            items = [(p["app_poi_code"], str(s["sku_id"]), int(s["stock"])) for f in foods for s in f["skus"]]
        except (KeyError, ValueError, TypeError):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "food_data 格式错误"}})
        if len(foods) > FOODS_PER_STOCK_CALL:
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "food_data 超过200个"}})
        if p["app_poi_code"] not in self.poi_codes.values() or any(n < 0 for _, _, n in items):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "门店或库存错误"}})
        with self._lock:
            for poi, sku_id, n in items:
                self.stock[(poi, sku_id)] = n
            self.stock_calls.append({"app_poi_code": p["app_poi_code"], "food_data": foods})
        return Response(200, {"data": "ok"})

    def _stock_get(self, p: dict[str, str]) -> Response:
        code = p.get("app_food_code", "")
        return Response(200, {"data": {"app_food_code": code, "skus": [
            {"sku_id": code, "stock": str(self.stock.get((p.get("app_poi_code", ""), code), 0))}]}})

    def _order_detail(self, p: dict[str, str]) -> Response:
        order = self.orders.get(p.get("order_id", ""))
        if order is None:
            return Response(200, {"data": "ng", "error": {"code": ERR_NO_ORDER, "msg": "订单不存在"}})
        return Response(200, {"data": order})

    def _order_list(self, p: dict[str, str]) -> Response:
        """The store's orders updated in [start_time, end_time), oldest first, `page_size` a page; `vernier`
        is the offset of the next page ("" at the end)."""
        try:
            start, end, size = int(p["start_time"]), int(p["end_time"]), int(p.get("page_size") or 100)
            offset = int(p.get("vernier") or 0)
        except (KeyError, ValueError):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "参数错误"}})
        with self._lock:
            found = sorted((o["utime"], o["order_id"]) for o in self.orders.values()
                           if o["app_poi_code"] == p.get("app_poi_code") and start <= o["utime"] < end)
        page = found[offset:offset + size]
        more = offset + size < len(found)
        return Response(200, {"data": {"order_ids": [oid for _, oid in page],
                                       "vernier": str(offset + size) if more else ""}})

    def _step(self, operation: str, allowed: set[int], to: int | None) -> Any:
        def handler(p: dict[str, str]) -> Response:
            order_id = p.get("order_id", "")
            with self._lock:
                order = self.orders.get(order_id)
                if order is None:
                    return Response(200, {"data": "ng", "error": {"code": ERR_NO_ORDER, "msg": "订单不存在"}})
                done = (operation, order_id) in self.calls
                if not done and order["status"] not in allowed:
                    return Response(200, {"data": "ng", "error": {"code": ERR_STATE, "msg": "订单状态不允许"}})
                if not done:                       # a repeated call is answered ok and changes nothing
                    self.calls.append((operation, order_id))
                    if to is not None:
                        order.update(status=to, utime=int(time.time()))
            return Response(200, {"data": "ok"})
        return handler

    def _cancel(self, p: dict[str, str]) -> Response:
        """商家取消订单: an order not yet delivered, with a known reason_code; it becomes 9 (cancelled, the
        platform pays its buyer back). A repeat is answered ok and changes nothing."""
        order_id = p.get("order_id", "")
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(200, {"data": "ng", "error": {"code": ERR_NO_ORDER, "msg": "订单不存在"}})
            if order_id in self.cancels:
                return Response(200, {"data": "ok"})
            if p.get("reason_code") not in CANCEL_REASONS or not p.get("reason"):
                return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "取消原因错误"}})
            if order["status"] not in {1, 2, 3, 4}:
                return Response(200, {"data": "ng", "error": {"code": ERR_STATE, "msg": "订单状态不允许"}})
            self.cancels[order_id] = {"reason_code": p["reason_code"], "reason": p["reason"]}
            order.update(status=9, utime=int(time.time()))
        return Response(200, {"data": "ok"})

    # -- riders: the platform's (reported to the hub), the store's (synced to the platform) ----------
    def rider_routes(self) -> dict[str, Any]:
        return {"/ecommerce/order/logistics/sync": self._logistics_sync,
                "/order/refund/agree": self._refund_answer(True),
                "/order/refund/reject": self._refund_answer(False)}

    def rider_params(self, push_url: str, order_id: str, logistics_status: int, *, name: str = "张师傅",
                     phone: str = "13700001111", at: int | None = None) -> dict[str, str]:
        """The platform's rider moved (配送状态推送): a signed logistics push's parameters, for an order the
        store handed to the platform's rider (`order/logistics/push`)."""
        if ("logistics_push", order_id) not in self.calls:
            raise AssertionError(f"order {order_id} was never handed to the platform's rider")
        return self.push_params(push_url, order_id, "logistics", logistics_status=logistics_status,
                                dispatcher_name=name, dispatcher_mobile=phone,
                                time=at if at is not None else int(time.time()))

    def push_rider(self, push_url: str, order_id: str, logistics_status: int, **kw: Any) -> requests.Response:
        resp = requests.post(push_url, data=self.rider_params(push_url, order_id, logistics_status, **kw), timeout=10)
        with self._lock:
            self.pushes.append(("logistics", order_id, resp.status_code))
        return resp

    def _logistics_sync(self, p: dict[str, str]) -> Response:
        """The store's own courier, told back: only for an order the store delivers (logistics_code 0000), a
        known logistics_status, the courier named once one is assigned, a position of two decimal degrees."""
        order = self.orders.get(p.get("order_id", ""))
        if order is None:
            return Response(200, {"data": "ng", "error": {"code": ERR_NO_ORDER, "msg": "订单不存在"}})
        if order.get("logistics_code") != SELF_DELIVERY:
            return Response(200, {"data": "ng", "error": {"code": ERR_STATE, "msg": "非商家自配送订单"}})
        status = p.get("logistics_status", "")
        if status not in SYNC_STATUSES or (status in {"10", "15", "20", "40"} and not p.get("courier_name")):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "logistics_status 或骑手信息错误"}})
        try:
            lat, lng = (float(p[k]) for k in ("latitude", "longitude")) if "latitude" in p else (0.0, 0.0)
        except (KeyError, ValueError):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "经纬度错误"}})
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "经纬度错误"}})
        with self._lock:
            self.rider_syncs.append({k: v for k, v in p.items() if k not in ("sig", "timestamp", "app_id")})
        return Response(200, {"data": "ok"})

    # -- after-sales: the buyer asks the platform, the platform asks the store (the hub) ---------------
    def refund_params(self, push_url: str, order_id: str, refund_id: str, lines: list[tuple[str, int]] | None,
                      reason: str = "商品缺失") -> dict[str, str]:
        """A signed refund push: `part_refund` with its lines (hub sku, count) in `food`, or `refund` (None: the
        whole order). The request is kept, to be answered through refund/agree or refund/reject."""
        food = None if lines is None else json.dumps(
            [{"app_food_code": self.sku_id(sku), "sku_id": self.sku_id(sku), "count": qty} for sku, qty in lines],
            ensure_ascii=False)
        with self._lock:
            self.refunds.setdefault(refund_id, {"order_id": order_id, "lines": lines, "status": "applied"})
        extra: dict[str, Any] = {"refund_id": refund_id, "reason": reason, "notify_type": "apply"}
        if food is not None:
            extra["food"] = food
        return self.push_params(push_url, order_id, "part_refund" if lines is not None else "refund", **extra)

    def _refund_answer(self, agree: bool) -> Any:
        def handler(p: dict[str, str]) -> Response:
            refund = self.refunds.get(p.get("refund_id", ""))
            if refund is None or refund["order_id"] != p.get("order_id"):
                return Response(200, {"data": "ng", "error": {"code": ERR_NO_ORDER, "msg": "退款单不存在"}})
            if not agree and not p.get("reason"):
                return Response(200, {"data": "ng", "error": {"code": ERR_PARAM, "msg": "驳回须填写原因"}})
            answer = "agreed" if agree else "rejected"
            with self._lock:
                if refund["status"] not in ("applied", answer):
                    return Response(200, {"data": "ng", "error": {"code": ERR_STATE, "msg": "退款单状态不允许"}})
                refund.update(status=answer, reason=p.get("reason", ""))     # a repeat is the same answer
            return Response(200, {"data": "ok"})
        return handler


SELF_DELIVERY = "0000"                     # logistics_code: 商家自配送
SYNC_STATUSES = {"0", "10", "15", "20", "40", "100"}
CANCEL_REASONS = {str(c) for c in range(2001, 2017)}   # 商家取消原因 codes (sandbox assumption, README)


SANDBOX = SandboxSystem(
    "meituan", MeituanSimulator, 8708, "HUB_MEITUAN_URL",
    credentials={"HUB_MEITUAN_APP_ID": "sandbox-mt-app-4711", "HUB_MEITUAN_APP_SECRET": "sandbox-meituan-secret",
                 "HUB_CHANNEL_MEITUAN_KEY": "sandbox-meituan-key-0001"},
    bind=seed_binder)
