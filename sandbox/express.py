"""Express courier simulator: an SF-Express-style waybill API and Kuaidi100-style tracking.

SF (`POST /std/service`, form fields partnerID, requestID, serviceCode, timestamp, msgData,
msgDigest = base64(md5(urlencode(msgData + timestamp + checkword)))): EXP_RECE_CREATE_ORDER
gives a waybill number (a repeated orderId is refused with 8016, as SF does);
EXP_RECE_SEARCH_ORDER_RESP finds an order's waybill. Answers carry apiResultCode and
apiResultData (a JSON string).

Kuaidi100: `POST /poll` subscribes a waybill (schema=json, param={company, number, key,
parameters:{callbackurl, salt}}); every state change is pushed to the callback URL as
form fields param (JSON, lastResult with the whole history, newest first) and
sign = upper(md5(param + salt)). `POST /poll/query.do` (customer, param,
sign = upper(md5(param + key + customer))) answers the same lastResult for polling.

Tests drive a parcel with `advance(waybill_no, state)`; `auto_step_s` walks subscribed
parcels through collected -> in transit -> out for delivery -> signed on a clock.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Self
from urllib.parse import quote_plus

import requests

from .base import Request, Response, SandboxSystem, Simulator

CST = timezone(timedelta(hours=8))
COMPANY = "shunfeng"
# Kuaidi100 state -> the status word each history entry carries (resultv2=1), and a line of text.
STATE_NAMES = {0: "在途", 1: "揽收", 2: "疑难", 3: "签收", 4: "退签", 5: "派件", 6: "退回",
               7: "转投", 8: "清关", 10: "待清关", 11: "清关中", 12: "已清关", 13: "清关异常", 14: "拒签"}
PHONE_REQUIRED = {"shunfeng", "zhongtong"}   # Kuaidi100 tracks these only with a matching phone
CONTEXTS = {
    0: "[上海市]快件已从上海嘉定集散中心发出",
    1: "[上海市]顺丰速运 已收取快件",
    2: "[上海市]收件人电话无人接听，快件滞留",
    3: "[上海市]快件已签收，签收人：本人",
    4: "[上海市]退回件已由寄件人签收",
    5: "[上海市]快件交给王师傅，正在派送途中（联系电话：13900001234）",
    6: "[上海市]收件人拒收，快件退回中",
}
HAPPY_PATH = (1, 0, 5, 3)
TRANSIENT_API_CODES = {"A1005", "A1009", "A1099"}


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    # SF's Java sample URL-encodes with URLEncoder (space -> '+', '~' escaped) before MD5.
    text = quote_plus(msg_data + timestamp + checkword, safe="*").replace("~", "%7E")
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def k100_sign(*parts: str) -> str:
    return hashlib.md5("".join(parts).encode()).hexdigest().upper()


@dataclass
class Parcel:
    waybill_no: str
    order_id: str
    request: dict[str, Any]
    state: int | None = None
    history: list[dict[str, str]] = field(default_factory=list)   # newest first, as Kuaidi100 sends


@dataclass
class Subscription:
    number: str
    company: str
    callback_url: str
    salt: str


@dataclass
class Push:
    waybill_no: str
    url: str
    form: dict[str, str]
    status: int | None          # the subscriber's HTTP status; None when it could not be reached
    reply: Any = None

    @property
    def accepted(self) -> bool:
        return self.status == 200 and isinstance(self.reply, dict) and self.reply.get("result") is True


class ExpressSimulator(Simulator):
    name = "express"

    def __init__(self, *, partner_id: str, checkword: str, customer: str, key: str,
                 auto_step_s: float | None = None, port: int = 0, host: str = "127.0.0.1"):
        self.partner_id, self.checkword, self.customer, self.key = partner_id, checkword, customer, key
        self.auto_step_s = auto_step_s
        self.parcels: dict[str, Parcel] = {}
        self.orders: dict[str, str] = {}               # SF orderId -> waybill number
        self.subscriptions: dict[str, Subscription] = {}
        self.pushes: list[Push] = []
        self.api_result_next: list[str] = []           # force these apiResultCodes on the next SF calls
        self._held: list[tuple[str, dict[str, str]]] = []   # a push held back to arrive out of order
        self._seq = 1400000000000
        self._stop = threading.Event()
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        # Subscribers name their own callback URL, so `callback_base` is not needed here.
        return cls(partner_id=env["HUB_SF_PARTNER_ID"], checkword=env["HUB_SF_CHECKWORD"],
                   customer=env["HUB_KUAIDI100_CUSTOMER"], key=env["HUB_KUAIDI100_KEY"],
                   auto_step_s=2.0, port=port)

    def setup_routes(self) -> None:
        self.route("POST", "/std/service", self._sf_service)
        self.route("POST", "/poll", self._k100_subscribe)
        self.route("POST", "/poll/query.do", self._k100_query)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.pushes.clear()
            self.api_result_next.clear()
            self._held.clear()

    def stop(self) -> None:
        self._stop.set()
        super().stop()

    # -- SF waybill API ------------------------------------------------------------------------
    def _sf_service(self, req: Request) -> Response:
        form = req.form()
        missing = [k for k in ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")
                   if not form.get(k)]
        if missing:
            return _sf_api("A1001", f"必传参数不可为空: {','.join(missing)}")
        if form["partnerID"] != self.partner_id:
            return _sf_api("A1004", "无对应服务权限")
        expected = sf_digest(form["msgData"], form["timestamp"], self.checkword)
        if not hmac.compare_digest(expected, form["msgDigest"]):
            return _sf_api("A1006", "数字签名无效")
        with self._lock:
            if self.api_result_next:
                code = self.api_result_next.pop(0)
                return _sf_api(code, "流量受控" if code == "A1005" else "系统异常")
        try:
            msg = json.loads(form["msgData"])
        except ValueError:
            return _sf_api("A1000", "", _sf_result(False, "1000", "msgData 不是合法的 JSON"))
        if form["serviceCode"] == "EXP_RECE_CREATE_ORDER":
            return _sf_api("A1000", "", self._create_order(msg))
        if form["serviceCode"] == "EXP_RECE_SEARCH_ORDER_RESP":
            return _sf_api("A1000", "", self._search_order(msg))
        return _sf_api("A1004", f"无对应服务权限: {form['serviceCode']}")

    def _create_order(self, msg: dict[str, Any]) -> dict[str, Any]:
        order_id = str(msg.get("orderId") or "")
        if not order_id:
            return _sf_result(False, "8013", "订单号不能为空")
        contacts = {c.get("contactType"): c for c in msg.get("contactInfoList") or [] if isinstance(c, dict)}
        sender, receiver = contacts.get(1) or {}, contacts.get(2) or {}
        for code, text, ok in (("1010", "寄件地址不能为空", sender.get("address")),
                               ("1011", "寄件联系人不能为空", sender.get("contact")),
                               ("1012", "寄件电话不能为空", sender.get("tel") or sender.get("mobile")),
                               ("1014", "到件地址不能为空", receiver.get("address")),
                               ("1015", "到件联系人不能为空", receiver.get("contact")),
                               ("1016", "到件电话不能为空", receiver.get("mobile") or receiver.get("tel")),
                               ("8017", "托寄物信息不能为空", msg.get("cargoDetails"))):
            if not ok:
                return _sf_result(False, code, text)
        with self._lock:
            if order_id in self.orders:
                return _sf_result(False, "8016", "重复下单")
            self._seq += 1
            waybill = f"SF{self._seq}"
            self.orders[order_id] = waybill
            self.parcels[waybill] = Parcel(waybill, order_id, msg)
        return _sf_result(True, "S0000", None, self._order_data(order_id, waybill))

    def _search_order(self, msg: dict[str, Any]) -> dict[str, Any]:
        order_id = str(msg.get("orderId") or "")
        with self._lock:
            waybill = self.orders.get(order_id)
        if waybill is None:
            return _sf_result(False, "8018", "未获取到订单信息")
        return _sf_result(True, "S0000", None, self._order_data(order_id, waybill))

    @staticmethod
    def _order_data(order_id: str, waybill: str) -> dict[str, Any]:
        return {"orderId": order_id, "originCode": "021", "destCode": "021", "filterResult": 2,
                "waybillNoInfoList": [{"waybillType": 1, "waybillNo": waybill}]}

    # -- Kuaidi100 subscribe and query ----------------------------------------------------------
    def _k100_subscribe(self, req: Request) -> Response:
        form = req.form()
        try:
            param = json.loads(form.get("param") or "")
        except ValueError:
            return Response(200, _k100(False, "700", "订阅方的订阅数据存在错误"))
        if param.get("key") != self.key:
            return Response(200, _k100(False, "600", "您不是合法的订阅者（即授权Key出错）"))
        params = param.get("parameters") or {}
        number, company = str(param.get("number") or ""), str(param.get("company") or "")
        if not number or not params.get("callbackurl"):
            return Response(200, _k100(False, "700", "订阅方的订阅数据存在错误（如不支持的快递公司、单号为空）"))
        if company != COMPANY:
            return Response(200, _k100(False, "701", "拒绝订阅的快递公司"))
        refused = self._phone_refused(company, number, params.get("phone"))
        if refused:
            return Response(200, _k100(False, "700", refused))
        with self._lock:
            if number in self.subscriptions:
                return Response(200, _k100(False, "501", "重复订阅"))
            self.subscriptions[number] = Subscription(number, company, params["callbackurl"],
                                                      str(params.get("salt") or ""))
        if self.auto_step_s:
            threading.Thread(target=self._walk, args=(number,), daemon=True).start()
        return Response(200, _k100(True, "200", "提交成功"))

    def _k100_query(self, req: Request) -> Response:
        form = req.form()
        param_text = form.get("param") or ""
        if form.get("customer") != self.customer:
            return Response(200, _k100(False, "408", "您提交的授权码验证失败"))
        if not hmac.compare_digest(k100_sign(param_text, self.key, self.customer), form.get("sign") or ""):
            return Response(200, _k100(False, "503", "验证签名失败"))
        try:
            param = json.loads(param_text)
        except ValueError:
            return Response(200, _k100(False, "400", "提交的数据不完整"))
        refused = self._phone_refused(str(param.get("com") or ""), str(param.get("num") or ""), param.get("phone"))
        if refused:
            return Response(200, _k100(False, "400", refused))
        with self._lock:
            parcel = self.parcels.get(str(param.get("num") or ""))
            if parcel is None or not parcel.history:
                return Response(200, _k100(False, "500", "查询无结果，请隔段时间再查"))
            return Response(200, {**self._last_result(parcel), "message": "ok", "status": "200"})

    def _phone_refused(self, company: str, number: str, phone: Any) -> str | None:
        """SF and ZTO tracking needs the receiver's or sender's phone, and it must be theirs."""
        if company not in PHONE_REQUIRED:
            return None
        if not phone:
            return f"{company} 单号需要提供收、寄件人的电话号码 (phone)"
        with self._lock:
            parcel = self.parcels.get(number)
        if parcel is not None:
            contacts = parcel.request.get("contactInfoList") or []
            known = {_digits(c.get(k)) for c in contacts for k in ("tel", "mobile") if c.get(k)}
            if _digits(phone) not in known:
                return "电话号码与运单不符"
        return None

    # -- moving a parcel and pushing -------------------------------------------------------------
    def advance(self, waybill_no: str, state: int, context: str | None = None,
                at: datetime | None = None) -> list[Push]:
        """Add a tracking step and push it to the subscriber now; the pushes made."""
        when = (at or datetime.now(CST)).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        with self._lock:
            parcel = self.parcels[waybill_no]
            parcel.state = state
            parcel.history.insert(0, {"time": when, "ftime": when, "context": context or CONTEXTS.get(state, ""),
                                      "status": STATE_NAMES.get(state, "在途"), "areaName": "上海"})
            sub = self.subscriptions.get(waybill_no)
            if sub is None:
                return []
            param = json.dumps({"status": "polling", "billstatus": "got", "message": "",
                                "lastResult": self._last_result(parcel)}, ensure_ascii=False)
            form = {"param": param, "sign": k100_sign(param, sub.salt)}
            batch = [(sub.callback_url, form)]
            if self.faults.duplicate_callbacks:
                batch.append((sub.callback_url, form))
            if self.faults.reorder_callbacks and not self._held:
                self._held.append((sub.callback_url, form))     # this one arrives after the next
                return []
            batch += self._held
            self._held = []
        return [self._push(_number(f), url, f) for url, f in batch]

    def abort_tracking(self, waybill_no: str, message: str = "3天查询无记录") -> dict[str, str]:
        """Kuaidi100 gives up on a waybill (`status: abort`, e.g. no record for three days): the push
        form it sends, signed; the subscription ends, so later steps are only seen by a query."""
        with self._lock:
            parcel = self.parcels[waybill_no]
            sub = self.subscriptions.pop(waybill_no)
            param = json.dumps({"status": "abort", "billstatus": "got", "message": message,
                                "autoCheck": "0", "lastResult": self._last_result(parcel)}, ensure_ascii=False)
        return {"param": param, "sign": k100_sign(param, sub.salt)}

    def flush_held(self) -> list[Push]:
        """Deliver a push held back by `reorder_callbacks` (when no later step came)."""
        with self._lock:
            held, self._held = self._held, []
        return [self._push(_number(f), url, f) for url, f in held]

    def _last_result(self, parcel: Parcel) -> dict[str, Any]:
        return {"message": "ok", "state": str(parcel.state), "status": "200", "condition": "F00",
                "ischeck": "1" if parcel.state in (3, 4) else "0", "com": COMPANY, "nu": parcel.waybill_no,
                "data": [dict(step) for step in parcel.history]}

    def _push(self, waybill_no: str, url: str, form: dict[str, str]) -> Push:
        try:
            resp = requests.post(url, data=form, timeout=3)
            try:
                reply = resp.json()
            except ValueError:
                reply = resp.text
            push = Push(waybill_no, url, form, resp.status_code, reply)
        except requests.RequestException as exc:
            push = Push(waybill_no, url, form, None, str(exc))
        with self._lock:
            self.pushes.append(push)
        return push

    def _walk(self, number: str) -> None:
        for state in HAPPY_PATH:
            if self._stop.wait(self.auto_step_s or 0):
                return
            with self._lock:
                known = number in self.parcels
            if known:
                self.advance(number, state)


def _digits(phone: Any) -> str:
    return "".join(ch for ch in str(phone or "") if ch.isdigit())


def _number(form: dict[str, str]) -> str:
    return json.loads(form["param"])["lastResult"]["nu"]


def _sf_result(success: bool, code: str, message: str | None, data: Any = None) -> dict[str, Any]:
    return {"success": success, "errorCode": code, "errorMsg": message, "msgData": data}


def _sf_api(code: str, message: str, result: dict[str, Any] | None = None) -> Response:
    return Response(200, {"apiErrorMsg": message, "apiResponseID": f"{int(time.time() * 1000):X}",
                          "apiResultCode": code,
                          "apiResultData": json.dumps(result, ensure_ascii=False) if result else None})


def _k100(result: bool, code: str, message: str) -> dict[str, Any]:
    return {"result": result, "returnCode": code, "message": message}


SANDBOX = SandboxSystem(
    "express", ExpressSimulator, 8706, "HUB_EXPRESS_URL",
    credentials={"HUB_KUAIDI100_CUSTOMER": "SANDBOXCUSTOMER", "HUB_KUAIDI100_KEY": "sandbox-kuaidi100-key",
                 "HUB_KUAIDI100_SALT": "sandbox-kuaidi100-salt", "HUB_SF_PARTNER_ID": "SFSANDBOX",
                 "HUB_SF_CHECKWORD": "sandbox-sf-checkword"})
