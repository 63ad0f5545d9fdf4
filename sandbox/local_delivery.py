"""Local delivery courier simulator (Dada style): fee query, order after query (the quote's deliveryNo
freezes the fee), reAddOrder (an order Dada cancelled or let expire, published again), addTip, cancel, status
query, callbacks.

Requests are JSON: app_key, timestamp, format, v, source_id, body (the business fields as
a JSON string) and signature = upper(md5(app_secret + sorted key+value pairs + app_secret)).
Answers are {status, code, msg, result}, always HTTP 200; code 0 is success.

After `addAfterQuery` the delivery moves through its statuses on a clock (`step_s`) and each
change is POSTed as JSON to the callback URL given with the fee query: client_id (Dada's
order number), order_id (the hub's), order_status, update_time, dm_name, dm_mobile and
signature = md5 of the sorted values of client_id, order_id and update_time, joined.
Tests use `step_s=None` and drive deliveries with `advance(order_id, status)`.

The callback signature covers public fields only (it proves nothing), so the status query
(`/api/order/status/query`, by the merchant's order id, signed like every request) is what a
merchant trusts: it answers the delivery's real state — statusCode, statusMsg, the rider
(transporterName/Phone), the fees in yuan and the times each step happened ("YYYY-MM-DD HH:MM:SS",
China time; "" for a step not reached). An order never booked is 2005 "订单不存在".
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Self

import requests

from .base import Request, Response, SandboxSystem, Simulator

SYSTEM = "local_delivery"
# Dada shop numbers of the hub's stores, with their coordinates (as config.yaml places them).
SHOPS = {"11047059": (31.2291, 121.4484), "11047060": (31.1945, 121.4370), "11047061": (31.2397, 121.4998)}
SHOP_NOS = {"S001": "11047059", "S002": "11047060", "S003": "11047061"}
RIDER = {"dm_id": 666, "dm_name": "张骑士", "dm_mobile": "13911112222"}
CHINA = timezone(timedelta(hours=8))
# The status query's times: which status each records (accepted = a rider took it; fetched = he has the goods).
STEP_TIMES = {"acceptTime": (2, 8), "fetchTime": (3,), "finishTime": (4,), "cancelTime": (5,)}
HAPPY_PATH = (2, 100, 3, 4)
QUOTE_TTL_S = 180          # Dada keeps a fee quote for three minutes
REPUBLISH_CODE = 2160      # addAfterQuery for an order published before (assumed code, see the README)
STATUS_NAMES = {1: "待接单", 2: "待取货", 3: "配送中", 4: "已完成", 5: "已取消", 7: "已过期", 8: "指派单",
                9: "妥投异常之物品返回中", 10: "妥投异常之物品返回完成", 100: "骑士到店", 1000: "创建达达运单失败"}
REQUIRED = ("shop_no", "origin_id", "city_code", "cargo_price", "is_prepay", "receiver_name",
            "receiver_address", "receiver_lat", "receiver_lng", "callback", "cargo_weight")
MISSING_CODES = {"origin_id": 2104, "cargo_price": 2113, "receiver_name": 2120, "receiver_address": 2121,
                 "receiver_phone": 2122, "callback": 2123, "city_code": 2126, "receiver_lat": 2128,
                 "receiver_lng": 2128, "cargo_weight": 2112, "is_prepay": 2109, "shop_no": 2004}


def sandbox_bindings(skus: Iterable[str] = (), shops: dict[str, str] | None = None,
                     system: str = SYSTEM) -> list[tuple[str, str, str, str]]:
    """(system, kind, external_id, internal_id) rows binding hub stores to Dada shop numbers.
    Dada never sees SKUs as keys, so `skus` need no binding."""
    return [(system, "store", shop_no, store) for store, shop_no in (shops or SHOP_NOS).items()]


def seed_binder(binder: Any, skus: Iterable[str] = (), shops: dict[str, str] | None = None,
                system: str = SYSTEM) -> Any:
    for row in sandbox_bindings(skus, shops, system):
        binder.bind(*row)
    return binder


def dada_signature(params: dict[str, Any], app_secret: str) -> str:
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "signature")
    return hashlib.md5(f"{app_secret}{text}{app_secret}".encode()).hexdigest().upper()


def callback_signature(client_id: str, order_id: str, update_time: int) -> str:
    return hashlib.md5("".join(sorted([client_id, order_id, str(update_time)])).encode()).hexdigest()


@dataclass
class Delivery:
    delivery_no: str               # Dada's order number: deliveryNo of the quote, client_id in callbacks
    origin_id: str                 # the hub's order id
    shop_no: str
    callback: str
    fee: Decimal
    distance_m: float
    quoted_at: float
    request: dict[str, Any]
    booked: bool = False
    status: int | None = None
    last_update: int = 0
    history: list[int] = field(default_factory=list)
    times: dict[int, int] = field(default_factory=dict)     # status -> update_time it was first reached
    deduct_fee: float = 0.0
    tips: Decimal = Decimal("0")


@dataclass
class Callback:
    order_id: str
    url: str
    body: dict[str, Any]
    status: int | None              # the hub's HTTP status; None when it could not be reached
    reply: str = ""


@dataclass
class RiderKnobs:
    fate: str = "delivered"         # delivered | cancelled (the rider gives up) | expired (nobody takes it)
    #                                 | returned (nobody takes the goods at the door: they go back to the store)
    drop_callbacks: bool = False    # change status without calling back (the hub must poll or wait)


class LocalDeliverySimulator(Simulator):
    name = "local_delivery"

    def __init__(self, *, app_key: str, app_secret: str, source_id: str, step_s: float | None = 0.5,
                 port: int = 0, host: str = "127.0.0.1"):
        self.app_key, self.app_secret, self.source_id = app_key, app_secret, source_id
        self.step_s = step_s
        self.quote_ttl_s: float = QUOTE_TTL_S
        self.knobs = RiderKnobs()
        self.deliveries: dict[str, Delivery] = {}      # origin_id -> the latest quote / booking
        self.published: set[str] = set()               # origin_ids booked at least once (re-dispatch: reAddOrder)
        self.callbacks: list[Callback] = []
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._seq = 0
        self._stop = threading.Event()
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        # The callback URL comes with each fee query, so `callback_base` is not needed here.
        return cls(app_key=env["HUB_DADA_APP_KEY"], app_secret=env["HUB_DADA_APP_SECRET"],
                   source_id=env.get("HUB_DADA_SOURCE_ID", "73753"), step_s=3.0, port=port)

    def setup_routes(self) -> None:
        self.route("POST", "/api/order/queryDeliverFee", self._signed(self._query_fee))
        self.route("POST", "/api/order/addAfterQuery", self._signed(self._add_after_query))
        self.route("POST", "/api/order/formalCancel", self._signed(self._formal_cancel))
        self.route("POST", "/api/order/status/query", self._signed(self._status_query))
        self.route("POST", "/api/order/addTip", self._signed(self._add_tip))
        self.route("POST", "/api/order/reAddOrder", self._signed(self._re_add_order))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.knobs = RiderKnobs()
            self.quote_ttl_s = QUOTE_TTL_S
            self.callbacks.clear()
            self._held.clear()
            self.published.clear()

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    def busy_next(self, n: int = 1, code: int = -1, msg: str = "系统异常") -> None:
        """Answer the next `n` requests with a Dada error code (HTTP 200, as Dada does)."""
        self.faults.fail_next, self.faults.error_status = n, 200
        self.faults.error_body = {"status": "fail", "code": code, "msg": msg, "result": None}

    # -- the signed envelope ---------------------------------------------------------------------
    def _signed(self, handler: Any) -> Any:
        def check(req: Request) -> Response:
            try:
                params = req.json()
            except ValueError:
                return _fail(1993, "参数不能为空")
            if not isinstance(params, dict):
                return _fail(1993, "参数不能为空")
            for name, code in (("app_key", 8803), ("timestamp", 2009), ("signature", 2010), ("body", 1995)):
                if params.get(name) is None or (name != "body" and params[name] == ""):
                    return _fail(code, f"{name}不能为空")
            if params["app_key"] != self.app_key:
                return _fail(2001, "app_key无效")
            if str(params.get("source_id")) != self.source_id:
                return _fail(2002, "没有绑定正式商户,请检查接口中source_id值")
            if params.get("format") != "json":
                return _fail(1994, "format值不正确,默认为json")
            if params.get("v") != "1.0":
                return _fail(1996, "v的值不正确,默认为1.0")
            if not hmac.compare_digest(dada_signature(params, self.app_secret), str(params["signature"])):
                return _fail(2003, "签名错误")
            try:
                body = json.loads(params["body"]) if params["body"] else {}
            except ValueError:
                return _fail(2419, "body参数json解析出错,请检查body内的参数格式是否正确")
            return handler(body if isinstance(body, dict) else {})
        return check

    # -- operations -------------------------------------------------------------------------------
    def _query_fee(self, body: dict[str, Any]) -> Response:
        for name in REQUIRED + ("receiver_phone",):
            if body.get(name) in (None, ""):
                return _fail(MISSING_CODES.get(name, 2013), f"{name}不能为空")
        shop = SHOPS.get(str(body["shop_no"]))
        if shop is None:
            return _fail(2004, "无效的门店编号")
        try:
            lat, lng = float(body["receiver_lat"]), float(body["receiver_lng"])
            cargo = Decimal(str(body["cargo_price"]))
        except (TypeError, ValueError, ArithmeticError):
            return _fail(2013, "请求接口参数异常,请查看开发文档参数设定")
        if not -90 <= lat <= 90:
            return _fail(2079, "收货人纬度lat异常,请检查是否有问题")
        if not -180 <= lng <= 180:
            return _fail(2080, "收货人经度lng异常,请检查是否有问题")
        origin_id = str(body["origin_id"])
        distance = _distance_m(shop, (lat, lng))
        fee = (Decimal("6") + Decimal(str(max(distance - 3000, 0) / 1000)) * 2).quantize(Decimal("0.1"),
                                                                                        ROUND_HALF_UP)
        with self._lock:
            current = self.deliveries.get(origin_id)
            if current is not None and current.booked and current.status not in (5, 7):
                return _fail(2130, "订单已发单,不能查询运费")
            self._seq += 1
            delivery_no = f"Dada{int(time.time())}{self._seq:05d}"
            self.deliveries[origin_id] = Delivery(delivery_no, origin_id, str(body["shop_no"]), body["callback"],
                                                  fee, distance, time.time(), body)
        return _ok({"distance": round(distance, 1), "deliveryNo": delivery_no, "fee": float(fee),
                    "deliverFee": float(fee), "couponFee": 0.0, "tips": 0.0, "insuranceFee": 0.0,
                    "cargo_price": float(cargo)})

    def _add_after_query(self, body: dict[str, Any]) -> Response:
        delivery_no = str(body.get("deliveryNo") or "")
        if not delivery_no:
            return _fail(2078, "deliveryNo不能为空")
        with self._lock:
            delivery = next((d for d in self.deliveries.values() if d.delivery_no == delivery_no), None)
            if delivery is None:
                return _fail(2005, "订单不存在,请核查订单号")
            if delivery.booked:
                return _fail(2065, "该平台订单编号已处理,请勿重复请求")
            if time.time() - delivery.quoted_at > self.quote_ttl_s:
                return _fail(2062, "订单价格信息已过期,请重新查询后发单")
            if delivery.origin_id in self.published:    # cancelled or expired before: only reAddOrder republishes
                return _fail(REPUBLISH_CODE, "该订单已发过单,请调用重新发单接口")
            delivery.booked = True
            self.published.add(delivery.origin_id)
        self._publish(delivery.origin_id)
        return _ok(None)

    def _publish(self, origin_id: str) -> None:
        self.advance(origin_id, 1)
        if self.step_s:
            threading.Thread(target=self._ride, args=(origin_id,), daemon=True).start()

    def _re_add_order(self, body: dict[str, Any]) -> Response:
        """reAddOrder: the addOrder fields again, for an order Dada cancelled or let expire; the latest fee query's
        quote (if any) is the one republished, so its deliveryNo stays the booking's number."""
        for name in REQUIRED + ("receiver_phone",):
            if body.get(name) in (None, ""):
                return _fail(MISSING_CODES.get(name, 2013), f"{name}不能为空")
        origin_id = str(body["origin_id"])
        with self._lock:
            current = self.deliveries.get(origin_id)
            if origin_id not in self.published or current is None:
                return _fail(2005, "订单不存在,请核查订单号")
            if current.booked and current.status not in (5, 7, 1000):
                return _fail(2130, "订单已发单,不能重新发单")
            if current.booked:                            # no fee query since: a new Dada order number
                self._seq += 1
                current = Delivery(f"Dada{int(time.time())}{self._seq:05d}", origin_id, str(body["shop_no"]),
                                   str(body["callback"]), current.fee, current.distance_m, time.time(), body)
                self.deliveries[origin_id] = current
            current.booked, current.callback = True, str(body["callback"])
            fee, distance = current.fee, current.distance_m
        self._publish(origin_id)
        return _ok({"distance": round(distance, 1), "fee": float(fee), "deliverFee": float(fee),
                    "couponFee": 0.0, "tips": 0.0, "insuranceFee": 0.0})

    def _formal_cancel(self, body: dict[str, Any]) -> Response:
        order_id = str(body.get("order_id") or "")
        if not body.get("cancel_reason_id"):
            return _fail(2048, "订单取消原因ID不能为空")
        if str(body.get("cancel_reason_id")) == "10000" and not body.get("cancel_reason"):
            return _fail(2049, "订单取消原因ID对应其他,取消原因不能为空")
        with self._lock:
            delivery = self.deliveries.get(order_id)
            if delivery is None or not delivery.booked:
                return _fail(2005, "订单不存在,请核查订单号")
            status = delivery.status
        refusal = {5: (2076, "订单已取消,无法重复取消"), 3: (2050, "订单配送中,无法取消"),
                   4: (2051, "订单已完成配送,无法取消"), 7: (2052, "订单已过期,无法取消"),
                   9: (2458, "取消失败[订单状态为9,不能取消]"), 10: (2459, "取消失败[订单状态为10,不能取消]")}
        if status in refusal:
            return _fail(*refusal[status])
        deduct = 2.0 if status == 100 else 0.0            # the rider was already at the store
        with self._lock:
            delivery.deduct_fee = deduct
        self.advance(order_id, 5, cancel_reason=str(body.get("cancel_reason") or ""), cancel_from=2)
        return _ok({"deduct_fee": deduct})

    def _add_tip(self, body: dict[str, Any]) -> Response:
        """addTip: `tips` is the order's total tip in yuan; only while it waits for a rider (status 1)."""
        with self._lock:
            d = self.deliveries.get(str(body.get("order_id") or ""))
            if d is None or not d.booked:
                return _fail(2005, "订单不存在,请核查订单号")
            try:
                tips = Decimal(str(body["tips"]))
            except (KeyError, ArithmeticError):
                return _fail(2013, "请求接口参数异常,请查看开发文档参数设定")
            if d.status != 1:
                return _fail(2071, "订单状态不允许加小费")
            if tips <= d.tips:
                return _fail(2072, "小费金额需大于原小费")
            d.tips = tips
        return _ok(None)

    def _status_query(self, body: dict[str, Any]) -> Response:
        order_id = str(body.get("order_id") or "")
        if not order_id:
            return _fail(2104, "order_id不能为空")
        with self._lock:
            d = self.deliveries.get(order_id)
            if d is None or not d.booked or d.status is None:
                return _fail(2005, "订单不存在,请核查订单号")
            rider = d.status not in (1, 7)
            result = {"orderId": d.origin_id, "statusCode": d.status, "statusMsg": STATUS_NAMES.get(d.status, ""),
                      "transporterName": RIDER["dm_name"] if rider else "",
                      "transporterPhone": RIDER["dm_mobile"] if rider else "",
                      "transporterLng": "121.4484" if rider else "", "transporterLat": "31.2291" if rider else "",
                      "deliveryFee": float(d.fee), "tips": float(d.tips), "couponFee": 0.0, "insuranceFee": 0.0,
                      "actualFee": float(d.fee), "distance": round(d.distance_m, 1),
                      "createTime": _china(int(d.quoted_at)), "orderFinishCode": "", "deductFee": d.deduct_fee}
            for name, statuses in STEP_TIMES.items():
                reached = [d.times[s] for s in statuses if s in d.times]
                result[name] = _china(min(reached)) if reached else ""
        return _ok(result)

    def seed_booking(self, order_id: str, delivery_no: str, status: int = 1, *, shop_no: str = "11047059",
                     callback: str = "", update_time: int | None = None) -> Delivery:
        """A booking made before the test (a hub that booked and crashed, or a row a test wrote itself)."""
        with self._lock:
            d = Delivery(delivery_no, order_id, shop_no, callback, Decimal("6.0"), 1200.0, time.time(), {},
                         booked=True)
            self.deliveries[order_id] = d
            self.published.add(order_id)
        drop, self.knobs.drop_callbacks = self.knobs.drop_callbacks, True
        try:
            self.advance(order_id, status, update_time=update_time)
        finally:
            self.knobs.drop_callbacks = drop
        return d

    # -- moving a delivery and calling back -------------------------------------------------------
    def advance(self, order_id: str, status: int, *, update_time: int | None = None,
                cancel_reason: str = "", cancel_from: int = 0) -> list[Callback]:
        """Set a delivery's status and call back now; the callbacks made (none if held or dropped)."""
        with self._lock:
            d = self.deliveries[order_id]
            d.status = status
            d.history.append(status)
            # Strictly increasing per delivery, so the hub can order by update_time.
            d.last_update = update_time if update_time is not None else max(int(time.time()), d.last_update + 1)
            d.times.setdefault(status, d.last_update)
            rider = RIDER if status not in (1, 7) else {"dm_id": 0, "dm_name": "", "dm_mobile": ""}
            body = {"client_id": d.delivery_no, "order_id": d.origin_id, "order_status": status,
                    "cancel_reason": cancel_reason, "cancel_from": cancel_from, "update_time": d.last_update,
                    "signature": callback_signature(d.delivery_no, d.origin_id, d.last_update), **rider}
            if self.knobs.drop_callbacks:
                return []
            batch = [(d.callback, body)]
            if self.faults.duplicate_callbacks:
                batch.append((d.callback, body))
            if self.faults.reorder_callbacks and not self._held:
                self._held = batch                       # these arrive after the next change
                return []
            batch += self._held
            self._held = []
        return [self._post(url, b) for url, b in batch]

    def flush_held(self) -> list[Callback]:
        """Deliver callbacks held back by `reorder_callbacks` when no later change came."""
        with self._lock:
            held, self._held = self._held, []
        return [self._post(url, b) for url, b in held]

    def status_of(self, order_id: str) -> int | None:
        with self._lock:
            d = self.deliveries.get(order_id)
            return d.status if d else None

    def _post(self, url: str, body: dict[str, Any]) -> Callback:
        try:
            resp = requests.post(url, data=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json"}, timeout=3)
            cb = Callback(str(body["order_id"]), url, body, resp.status_code, resp.text[:200])
        except requests.RequestException as exc:
            cb = Callback(str(body["order_id"]), url, body, None, str(exc)[:200])
        with self._lock:
            self.callbacks.append(cb)
        return cb

    def _ride(self, order_id: str) -> None:
        fate = self.knobs.fate
        path = {"delivered": HAPPY_PATH, "cancelled": (2, 5), "expired": (7,),
                "returned": (2, 100, 3, 9, 10)}.get(fate, HAPPY_PATH)
        for status in path:
            if self._stop.wait(self.step_s or 0):
                return
            with self._lock:
                if self.deliveries[order_id].status in (4, 5, 7, 10):   # cancelled by the merchant meanwhile
                    return
            extra = {"cancel_reason": "骑士取消订单", "cancel_from": 1} if status == 5 else {}
            self.advance(order_id, status, **extra)


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * 6371000 * math.asin(math.sqrt(h))


def _china(unix: int) -> str:
    return datetime.fromtimestamp(unix, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _ok(result: Any) -> Response:
    return Response(200, {"status": "success", "code": 0, "msg": "成功", "result": result})


def _fail(code: int, msg: str) -> Response:
    return Response(200, {"status": "fail", "code": code, "msg": msg, "result": None})


SANDBOX = SandboxSystem(
    "local_delivery", LocalDeliverySimulator, 8707, "HUB_DADA_URL",
    credentials={"HUB_DADA_APP_KEY": "sandbox-dada-app-key", "HUB_DADA_APP_SECRET": "sandbox-dada-app-secret",
                 "HUB_DADA_SOURCE_ID": "73753"},
    bind=seed_binder)
