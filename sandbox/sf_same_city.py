"""SF 同城 (openic.sf-express.com) simulator: precreateorder quote, createorder, precancelorder /
cancelorder, addordergratuityfee tip, getorderstatus, and the rider status push.

Every request is `POST /open/api/external/<operation>?sign=<sign>` with a JSON body carrying `dev_id`
and `push_time`; sign = base64(md5_hex(body + "&" + dev_id + "&" + dev_key)) over the exact body
bytes. Answers are {error_code, error_msg, result}, HTTP 200; error_code 0 is success.

Prices are in fen, weights in grams, coordinates GCJ-02 (`lbs_type: 2`, 高德). SF gives no quote
number: `precreateorder` prices, `createorder` books and answers `sf_order_id`. Its pushes are
signed like requests (with the dev key) and go to the callback URL given in `createorder`
(SF configures one per developer account; the simulator takes it per order, see the README).
Order statuses: 1 订单创建, 10 配送员接单, 12 配送员到店, 15 配送员配送中, 17 配送员妥投完单,
2 订单取消, 22 配送员撤单, 91 骑士上报异常. A cancel is free before a rider accepts (status 1),
costs 2 yuan once one accepted or is at the store, and is refused once he has the goods (15, 17).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Self

import requests

from .base import Request, Response, SandboxSystem, Simulator
from .local_delivery import SHOP_NOS, _distance_m

SYSTEM = "sf_same_city"
SHOPS = {"3243279847393": (31.2291, 121.4484), "3243279847394": (31.1945, 121.4370),
         "3243279847395": (31.2397, 121.4998)}
SHOP_IDS = dict(zip(SHOP_NOS, SHOPS, strict=True))         # hub store -> SF shop_id
RIDER = {"operator_name": "顺丰骑士", "operator_phone": "13722223333"}
PENALTY_FEN = 200
ERRORS = {"sign": (1004, "签名错误"), "param": (1001, "参数错误"), "shop": (2001, "店铺不存在"),
          "missing": (2005, "订单不存在"), "refuse": (2012, "骑士已取货，不能取消"),
          "booked": (2003, "订单已存在"), "tip": (2017, "订单状态不允许加小费")}


def sf_sign(body: bytes, dev_id: str, dev_key: str) -> str:
    digest = hashlib.md5(body + f"&{dev_id}&{dev_key}".encode()).hexdigest()
    return base64.b64encode(digest.encode()).decode()


@dataclass
class SfOrder:
    sf_order_id: str
    shop_order_id: str
    shop_id: str
    callback: str
    total_price: int            # fen
    distance_m: int
    weight_gram: int
    status: int = 1
    gratuity_fee: int = 0
    deduction: int = 0
    history: list[int] = field(default_factory=list)
    push_time: int = 0


class SfSameCitySimulator(Simulator):
    name = SYSTEM

    def __init__(self, *, dev_id: str, dev_key: str, port: int = 0, host: str = "127.0.0.1"):
        self.dev_id, self.dev_key = dev_id, dev_key
        self.orders: dict[str, SfOrder] = {}        # shop_order_id -> its latest SF order
        self.pushes: list[tuple[str, dict[str, Any], int | None]] = []
        self.base_fee_fen = 900
        self.pickup_minutes = 15
        self.refuse_cancel = False                  # a knob: refuse every cancel (as after pickup)
        self._seq = 0
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(dev_id=env["HUB_SF_CITY_DEV_ID"], dev_key=env["HUB_SF_CITY_DEV_KEY"], port=port)

    def setup_routes(self) -> None:
        for op, handler in (("precreateorder", self._precreate), ("createorder", self._create),
                            ("precancelorder", self._precancel), ("cancelorder", self._cancel),
                            ("addordergratuityfee", self._tip), ("getorderstatus", self._status)):
            self.route("POST", f"/open/api/external/{op}", self._signed(handler))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.orders.clear()
            self.pushes.clear()
            self.base_fee_fen, self.pickup_minutes, self.refuse_cancel = 900, 15, False

    def _signed(self, handler: Any) -> Any:
        def check(req: Request) -> Response:
            sign = (req.query.get("sign") or [""])[-1]
            if not hmac.compare_digest(sf_sign(req.body, self.dev_id, self.dev_key), sign):
                return _fail("sign")
            try:
                body = json.loads(req.body)
            except ValueError:
                return _fail("param")
            if not isinstance(body, dict) or str(body.get("dev_id")) != self.dev_id or not body.get("push_time"):
                return _fail("param")
            return handler(body)
        return check

    def _price(self, body: dict[str, Any], receive: dict[str, Any]) -> tuple[int, int] | Response:
        shop = SHOPS.get(str(body.get("shop_id")))
        if shop is None or body.get("shop_type") != 1:
            return _fail("shop")
        try:
            lat, lng = float(receive["user_lat"]), float(receive["user_lng"])
        except (KeyError, TypeError, ValueError):
            return _fail("param")
        if body.get("lbs_type") != 2:          # the simulator places points in GCJ-02 only
            return _fail("param")
        distance = int(_distance_m(shop, (lat, lng)))
        weight = int(body.get("weight") or body.get("order_detail", {}).get("weight_gram") or 0)
        if weight <= 0:
            return _fail("param")
        fee = self.base_fee_fen + max(distance - 3000, 0) // 1000 * 200 + max(weight - 5000, 0) // 1000 * 100
        return fee, distance

    def _precreate(self, body: dict[str, Any]) -> Response:
        priced = self._price(body, body)
        if isinstance(priced, Response):
            return priced
        fee, distance = priced
        now = int(time.time())
        return _ok({"delivery_type": 0, "total_price": fee, "real_pay_money": fee, "delivery_distance_meter": distance,
                    "weight_gram": int(body["weight"]), "start_time": now, "expect_time": now + 45 * 60,
                    "promise_delivery_time": 45, "promise_pickup_time": self.pickup_minutes,
                    "charge_price_list": {"shop_pay_price": fee, "charges_detail": {"basic_fee": self.base_fee_fen}}})

    def _create(self, body: dict[str, Any]) -> Response:
        shop_order_id = str(body.get("shop_order_id") or "")
        receive = body.get("receive") or {}
        if not shop_order_id or not body.get("callback_url") or not isinstance(receive, dict):
            return _fail("param")
        priced = self._price(body, receive)
        if isinstance(priced, Response):
            return priced
        fee, distance = priced
        with self._lock:
            current = self.orders.get(shop_order_id)
            if current is not None and current.status not in (2, 22):
                # the same shop order sent again: SF answers the order it already holds
                return _ok(self._created(current))
            self._seq += 1
            order = SfOrder(f"JS{int(time.time())}{self._seq:05d}", shop_order_id, str(body["shop_id"]),
                            str(body["callback_url"]), fee, distance, int(body["order_detail"]["weight_gram"]))
            self.orders[shop_order_id] = order
        self.advance(shop_order_id, 1)
        return _ok(self._created(order))

    def _created(self, order: SfOrder) -> dict[str, Any]:
        return {"sf_order_id": order.sf_order_id, "sf_bill_id": "SF" + order.sf_order_id[2:],
                "shop_order_id": order.shop_order_id, "push_time": int(time.time()),
                "total_price": order.total_price, "delivery_distance_meter": order.distance_m}

    def _order_of(self, body: dict[str, Any]) -> SfOrder | None:
        ref = str(body.get("order_id") or "")
        with self._lock:
            if body.get("order_type") == 2:
                return self.orders.get(ref)
            return next((o for o in self.orders.values() if o.sf_order_id == ref), None)

    def _terms(self, order: SfOrder) -> tuple[bool, int]:
        if self.refuse_cancel or order.status in (15, 17, 91):
            return False, 0
        return True, PENALTY_FEN if order.status in (10, 12) else 0

    def _precancel(self, body: dict[str, Any]) -> Response:
        order = self._order_of(body)
        if order is None:
            return _fail("missing")
        allowed, penalty = self._terms(order)
        if not allowed:
            return _fail("refuse")
        return _ok({"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id,
                    "deduction_detail": {"deduction_fee": penalty, "shop_cancel_times": 0, "free_cancel_times": 3},
                    "push_time": int(time.time())})

    def _cancel(self, body: dict[str, Any]) -> Response:
        order = self._order_of(body)
        if order is None:
            return _fail("missing")
        if order.status in (2, 22):
            return _ok({"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id,
                        "deduction_detail": {"deduction_fee": order.deduction}, "push_time": int(time.time())})
        allowed, penalty = self._terms(order)
        if not allowed:
            return _fail("refuse")
        order.deduction = penalty
        self.advance(order.shop_order_id, 2)
        return _ok({"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id,
                    "deduction_detail": {"deduction_fee": penalty}, "push_time": int(time.time())})

    def _tip(self, body: dict[str, Any]) -> Response:
        order = self._order_of(body)
        if order is None:
            return _fail("missing")
        try:
            fee = int(body["gratuity_fee"])
        except (KeyError, TypeError, ValueError):
            return _fail("param")
        if order.status not in (1,) or fee <= 0:
            return _fail("tip")
        with self._lock:
            order.gratuity_fee += fee          # SF adds each tip to the ones before
        return _ok({"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id,
                    "total_gratuity_fee": order.gratuity_fee, "push_time": int(time.time())})

    def _status(self, body: dict[str, Any]) -> Response:
        order = self._order_of(body)
        if order is None:
            return _fail("missing")
        rider = order.status not in (1, 2)
        return _ok({"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id,
                    "order_status": order.status, "status_desc": "", "push_time": order.push_time,
                    "rider_name": RIDER["operator_name"] if rider else "",
                    "rider_phone": RIDER["operator_phone"] if rider else "",
                    "total_price": order.total_price, "gratuity_fee": order.gratuity_fee})

    # -- moving an order and pushing -----------------------------------------------------------
    def advance(self, shop_order_id: str, status: int, *, push: bool = True) -> int | None:
        """Set an order's status and push it (rider_status, order_complete or sf_cancel); the hub's HTTP status."""
        with self._lock:
            order = self.orders[shop_order_id]
            order.status = status
            order.history.append(status)
            order.push_time = max(int(time.time()), order.push_time + 1)
            index = {17: "order_complete", 2: "sf_cancel", 22: "sf_cancel"}.get(status, "rider_status")
            rider = RIDER if status not in (1, 2) else {"operator_name": "", "operator_phone": ""}
            body = {"sf_order_id": order.sf_order_id, "shop_order_id": order.shop_order_id, "url_index": index,
                    "order_status": status, "status_desc": "", "push_time": order.push_time, **rider}
            url = order.callback
        return self.push(url, body) if push else None

    def push(self, url: str, body: dict[str, Any], sign: str | None = None) -> int | None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        sign = sign if sign is not None else sf_sign(raw, self.dev_id, self.dev_key)
        try:
            status: int | None = requests.post(url, params={"sign": sign}, data=raw, timeout=3,
                                               headers={"Content-Type": "application/json"}).status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self.pushes.append((url, body, status))
        return status


def _ok(result: Any) -> Response:
    return Response(200, {"error_code": 0, "error_msg": "success", "error_data": None, "result": result})


def _fail(what: str) -> Response:
    code, msg = ERRORS[what]
    return Response(200, {"error_code": code, "error_msg": msg, "error_data": None, "result": None})


def seed_binder(binder: Any, skus: Any = (), system: str = SYSTEM) -> Any:
    for store, shop_id in SHOP_IDS.items():
        binder.bind(system, "store", shop_id, store)
    return binder


SANDBOX = SandboxSystem(
    SYSTEM, SfSameCitySimulator, 8717, "HUB_SF_CITY_URL",
    credentials={"HUB_SF_CITY_DEV_ID": "1588000001", "HUB_SF_CITY_DEV_KEY": "sandbox-sf-city-dev-key"},
    bind=seed_binder)
