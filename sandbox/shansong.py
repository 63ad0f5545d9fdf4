"""闪送 (Shansong, open.ishansong.com) simulator: orderCalculate quote, orderPlace, addition (加价), orderInfo,
preAbortOrder / abortOrder, and the order status callback.

Every request is `POST /openapi/merchants/v5/<operation>`, form-encoded: clientId, shopId, timestamp (ms),
data (the business fields as a JSON string; absent when there are none) and
sign = upper(md5(appSecret + "clientId" + clientId + "data" + data + "shopId" + shopId + "timestamp" + timestamp))
("data" and its value left out when there is no data). Answers are {status, msg, data}, HTTP 200; status 200
is success.

Fees are fen, weights whole kg, distances metres. `orderCalculate` answers `orderNumber` — the 闪送订单号
(issOrderNo), valid 30 minutes — which `orderPlace` books; `orderInfo`, `addition`, `preAbortOrder` and
`abortOrder` name it (`orderInfo` also takes the merchant's `thirdOrderNo`, the receiver's `orderNo`).
Statuses: 20 派单中 (sub 2 转单改派中), 30 待取货 (sub 2 已就位: the rider is at the store), 40 闪送中
(sub 3 物品送回中), 50 已完成, 60 已取消. A cancel is free while 派单中, costs 2 yuan (`deductAmount`) once a
rider accepted, and after pickup only with `deductFlag: true` (the rider brings the goods back, `sendBackFee`).

What the public documents leave open is assumed here and listed in the README: the callback URL is the account's
(`callback_url`, set at start), the callback is signed like a request (a form with the same envelope), the error
statuses, and `lbsType` 2 (GCJ-02) being accepted.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Self
from urllib.parse import parse_qs

import requests

from .base import Request, Response, SandboxSystem, Simulator
from .local_delivery import SHOP_NOS, _distance_m

SYSTEM = "shansong"
STORES = {"20001001": (31.2291, 121.4484), "20001002": (31.1945, 121.4370), "20001003": (31.2397, 121.4998)}
STORE_IDS = dict(zip(SHOP_NOS, STORES, strict=True))        # hub store -> Shansong storeId
COURIER = {"id": "SSSH000000101", "name": "闪送员王", "mobile": "13633334444", "type": 1}
PENALTY_FEN = 200
SEND_BACK_FEN = 1200
QUOTE_TTL_S = 30 * 60
CHINA = timezone(timedelta(hours=8))
STATUS_DESC = {20: "派单中", 30: "待取货", 40: "闪送中", 50: "已完成", 60: "已取消"}
ERRORS = {"sign": (10007, "签名错误"), "param": (10001, "参数错误"), "store": (20003, "店铺不存在"),
          "missing": (20011, "订单不存在"), "expired": (20012, "订单计费已过期,请重新计费"),
          "state": (20016, "当前订单状态不允许该操作"), "deduct": (20017, "闪送员已取件,取消需同意扣除送回费"),
          "addition": (20018, "加价金额需为100的整数倍,且不超过10000"), "capacity": (20030, "当前区域运力不足")}


def shansong_sign(params: dict[str, str], app_secret: str) -> str:
    text = app_secret + "".join(f"{k}{params[k]}" for k in ("clientId", "data", "shopId", "timestamp")
                                if params.get(k) not in (None, ""))
    return hashlib.md5(text.encode()).hexdigest().upper()


@dataclass
class IssOrder:
    iss_order_no: str
    order_no: str               # the merchant's order (thirdOrderNo)
    store_id: str
    total_fen: int
    distance_m: int
    weight_kg: int
    quoted_at: float
    placed: bool = False
    status: int = 0
    sub_status: int = 1
    addition_fen: int = 0
    deduct_fen: int = 0
    send_back_fen: int = 0
    changed_at: int = 0
    history: list[tuple[int, int]] = field(default_factory=list)


class ShansongSimulator(Simulator):
    name = SYSTEM

    def __init__(self, *, client_id: str, shop_id: str, app_secret: str, callback_url: str = "",
                 port: int = 0, host: str = "127.0.0.1"):
        self.client_id, self.shop_id, self.app_secret = client_id, shop_id, app_secret
        self.callback_url = callback_url            # the account's, as configured at Shansong
        self.orders: dict[str, IssOrder] = {}      # issOrderNo -> order
        self.callbacks: list[tuple[dict[str, Any], int | None]] = []
        self.base_fee_fen = 1500
        self.no_capacity = False                    # a knob: every quote refused (no rider in the area)
        self._seq = 0
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        url = f"{callback_base.rstrip('/')}/callbacks/{SYSTEM}" if callback_base else ""
        return cls(client_id=env["HUB_SHANSONG_CLIENT_ID"], shop_id=env["HUB_SHANSONG_SHOP_ID"],
                   app_secret=env["HUB_SHANSONG_APP_SECRET"], callback_url=url, port=port)

    def setup_routes(self) -> None:
        for op, handler in (("orderCalculate", self._calculate), ("orderPlace", self._place),
                            ("addition", self._addition), ("orderInfo", self._info),
                            ("preAbortOrder", self._pre_abort), ("abortOrder", self._abort)):
            self.route("POST", f"/openapi/merchants/v5/{op}", self._signed(handler))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.orders.clear()
            self.callbacks.clear()
            self.base_fee_fen, self.no_capacity = 1500, False

    def _signed(self, handler: Any) -> Any:
        def check(req: Request) -> Response:
            params = {k: v[-1] for k, v in parse_qs(req.body.decode(errors="replace")).items()}
            if params.get("clientId") != self.client_id or params.get("shopId") != self.shop_id \
                    or not params.get("timestamp"):
                return _fail("param")
            if not hmac.compare_digest(shansong_sign(params, self.app_secret), params.get("sign", "")):
                return _fail("sign")
            try:
                data = json.loads(params["data"]) if params.get("data") else {}
            except ValueError:
                return _fail("param")
            return handler(data if isinstance(data, dict) else {})
        return check

    # -- operations ---------------------------------------------------------------------------------
    def _calculate(self, data: dict[str, Any]) -> Response:
        store = STORES.get(str(data.get("storeId") or ""))
        receivers = data.get("receiverList")
        if store is None:
            return _fail("store")
        if not isinstance(receivers, list) or len(receivers) != 1 or not isinstance(receivers[0], dict):
            return _fail("param")
        r = receivers[0]
        try:
            to = (float(r["toLatitude"]), float(r["toLongitude"]))
            weight = int(r["weight"])
        except (KeyError, TypeError, ValueError):
            return _fail("param")
        if data.get("lbsType") != 2 or not r.get("orderNo") or weight <= 0 or not r.get("toMobile"):
            return _fail("param")          # the simulator places points in GCJ-02 only (lbsType 2)
        if self.no_capacity:
            return _fail("capacity")
        distance = int(_distance_m(store, to))
        fee = self.base_fee_fen + max(distance - 3000, 0) // 1000 * 300 + max(weight - 5, 0) * 200
        with self._lock:
            self._seq += 1
            no = f"TDH{datetime.now(CHINA):%Y%m%d}{self._seq:08d}"
            self.orders[no] = IssOrder(no, str(r["orderNo"]), str(data["storeId"]), fee, distance, weight,
                                       time.time())
        return _ok({"totalDistance": distance, "totalWeight": weight, "orderNumber": no,
                    "feeInfoList": [{"type": 1, "fee": fee, "des": "里程费"}], "totalAmount": fee,
                    "couponSaveFee": 0, "totalFeeAfterSave": fee, "interestDtoList": []})

    def _order(self, data: dict[str, Any]) -> IssOrder | None:
        no, third = str(data.get("issOrderNo") or ""), str(data.get("thirdOrderNo") or "")
        with self._lock:
            if no:
                return self.orders.get(no)
            placed = [o for o in self.orders.values() if o.order_no == third and o.placed]
            return placed[-1] if placed else None        # the merchant's order's latest placed one

    def _place(self, data: dict[str, Any]) -> Response:
        with self._lock:
            order = self._order(data)
            if order is None:
                return _fail("missing")
            if order.placed:           # placing the same quote again: the order it already is
                return _ok(self._placed(order))
            if time.time() - order.quoted_at > QUOTE_TTL_S:
                return _fail("expired")
            live = [o for o in self.orders.values() if o.order_no == order.order_no and o.placed
                    and o.status not in (50, 60)]
            if live:
                return _fail("state")  # one live Shansong order per merchant order
            order.placed = True
        self.advance(order.iss_order_no, 20)
        return _ok(self._placed(order))

    @staticmethod
    def _placed(order: IssOrder) -> dict[str, Any]:
        return {"orderNumber": order.iss_order_no, "totalDistance": order.distance_m,
                "totalWeight": order.weight_kg, "totalAmount": order.total_fen, "couponSaveFee": 0,
                "totalFeeAfterSave": order.total_fen}

    def _addition(self, data: dict[str, Any]) -> Response:
        with self._lock:
            order = self._order(data)
            if order is None or not order.placed:
                return _fail("missing")
            try:
                amount = int(data["additionAmount"])
            except (KeyError, TypeError, ValueError):
                return _fail("param")
            if amount <= 0 or amount % 100 or order.addition_fen + amount > 10000:
                return _fail("addition")
            if order.status != 20:
                return _fail("state")
            order.addition_fen += amount          # each addition adds to the ones before
        return _ok(None)

    def _info(self, data: dict[str, Any]) -> Response:
        with self._lock:
            order = self._order(data)
            if order is None or not order.placed:
                return _fail("missing")
            courier = dict(COURIER) if order.status in (30, 40, 50) else None
            return _ok({"orderNumber": order.iss_order_no, "thirdOrderNo": order.order_no,
                        "orderStatus": order.status, "orderStatusDesc": STATUS_DESC.get(order.status, ""),
                        "subOrderStatus": order.sub_status, "subOrderStatusDesc": "",
                        "courier": courier, "totalAmount": order.total_fen, "additionAmount": order.addition_fen,
                        "deductAmount": order.deduct_fen, "sendBackFee": order.send_back_fen,
                        "statusChangeLog": [{"orderStatus": s, "changeTime": _china(t)} for s, t in order.history],
                        "statusChangeTime": _china(order.changed_at)})

    def _terms(self, order: IssOrder) -> tuple[str, int, int] | None:
        """(what, deduct, send back) for a cancel now; None when the order can no longer be cancelled."""
        if order.status in (50, 60) or (order.status == 40 and order.sub_status != 1):
            return None
        if order.status == 40:
            return "deduct", PENALTY_FEN, SEND_BACK_FEN
        return "ok", PENALTY_FEN if order.status == 30 else 0, 0

    def _pre_abort(self, data: dict[str, Any]) -> Response:
        with self._lock:
            order = self._order(data)
            if order is None or not order.placed:
                return _fail("missing")
            terms = self._terms(order)
        if terms is None:
            return _fail("state")
        return _ok({"deductAmount": terms[1], "sendBackFee": terms[2], "abortType": 1, "punishType": 1})

    def _abort(self, data: dict[str, Any]) -> Response:
        with self._lock:
            order = self._order(data)
            if order is None or not order.placed:
                return _fail("missing")
            if order.status == 60:                 # cancelled before: the same answer again
                return _ok({"deductAmount": order.deduct_fen, "sendBackFee": order.send_back_fen,
                            "abortType": 1, "punishType": 1, "abortReason": "商家取消"})
            terms = self._terms(order)
            if terms is None:
                return _fail("state")
            what, deduct, send_back = terms
            if what == "deduct" and data.get("deductFlag") is not True:
                return _fail("deduct")
            order.deduct_fen, order.send_back_fen = deduct, send_back
        if what == "deduct":
            self.advance(order.iss_order_no, 40, 3)     # the goods on their way back; cancelled once back
        else:
            self.advance(order.iss_order_no, 60)
        return _ok({"deductAmount": deduct, "sendBackFee": send_back, "abortType": 1, "punishType": 1,
                    "abortReason": "商家取消"})

    # -- moving an order and calling back ---------------------------------------------------------
    def advance(self, iss_order_no: str, status: int, sub_status: int = 1, *, push: bool = True) -> int | None:
        """Set an order's status and call the account's callback URL; the hub's HTTP status (None: not sent)."""
        with self._lock:
            order = self.orders[iss_order_no]
            order.status, order.sub_status = status, sub_status
            order.changed_at = max(int(time.time()), order.changed_at + 1)
            order.history.append((status, order.changed_at))
            notify = {"issOrderNo": order.iss_order_no, "orderNo": order.order_no, "status": status,
                      "statusDesc": STATUS_DESC.get(status, ""), "subStatus": sub_status, "subStatusDesc": "",
                      "courier": dict(COURIER) if status in (30, 40, 50) else None,
                      "statusChangeTime": _china(order.changed_at), "deductAmount": order.deduct_fen,
                      "sendBackFee": order.send_back_fen, "drawback": 0, "abortType": 1 if status == 60 else 0,
                      "punishType": 0, "abortReason": "商家取消" if status == 60 else ""}
            url = self.callback_url
        return self.call_back(url, notify) if push and url else None

    def call_back(self, url: str, notify: dict[str, Any], sign: str | None = None) -> int | None:
        form = {"clientId": self.client_id, "shopId": self.shop_id, "timestamp": str(int(time.time() * 1000)),
                "data": json.dumps(notify, ensure_ascii=False, separators=(",", ":"))}
        form["sign"] = sign if sign is not None else shansong_sign(form, self.app_secret)
        try:
            status: int | None = requests.post(url, data=form, timeout=3).status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self.callbacks.append((notify, status))
        return status

    def latest(self, order_no: str) -> IssOrder | None:
        """The merchant order's latest placed Shansong order."""
        return self._order({"thirdOrderNo": order_no})


def _china(unix: int) -> str:
    return datetime.fromtimestamp(unix, CHINA).strftime("%Y-%m-%d %H:%M:%S") if unix else ""


def _ok(data: Any) -> Response:
    return Response(200, {"status": 200, "msg": "success", "data": data})


def _fail(what: str) -> Response:
    code, msg = ERRORS[what]
    return Response(200, {"status": code, "msg": msg, "data": None})


def seed_binder(binder: Any, skus: Any = (), system: str = SYSTEM) -> Any:
    for store, store_id in STORE_IDS.items():
        binder.bind(system, "store", store_id, store)
    return binder


SANDBOX = SandboxSystem(
    SYSTEM, ShansongSimulator, 8718, "HUB_SHANSONG_URL",
    credentials={"HUB_SHANSONG_CLIENT_ID": "ss-sandbox-client", "HUB_SHANSONG_SHOP_ID": "20000000001",
                 "HUB_SHANSONG_APP_SECRET": "sandbox-shansong-app-secret"},
    bind=seed_binder)
