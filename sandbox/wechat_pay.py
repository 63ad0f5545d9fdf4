"""WeChat Pay simulator: signs and encrypts payment notifications and posts them to the hub, serves
refunds as the platform does (the merchant's signature checked, one refund per out_refund_no, answers
signed with the platform key, then a REFUND.* notification to the request's notify_url), the daily
trade and refund bills (`GET /v3/bill/tradebill`, then the file at its `download_url`: sandbox/wechat_bills.py)
and the mini-program shipping-info upload (with its access token)."""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Self

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .base import Request, Response, SandboxSystem, Simulator
from .keys import merchant_private_key_pem, merchant_public_key_pem, platform_private_key_pem, platform_public_key_pem
from .wechat_bills import BILL_DOWNLOAD, TRADE_BILL, BillKnobs, BillServer
from .wechat_tokens import TokenIssuer

CST = timezone(timedelta(hours=8))
# WeChat's own express company ids (get_delivery_list), a few of them; Kuaidi100's codes are not these.
DELIVERY_IDS = {"SF", "ZTO", "YTO", "STO", "YD", "JD", "EMS", "JTSD", "DBL", "BEST"}
CONTACT_REQUIRED = {"SF"}            # SF shipments need a contact phone, masked
_MASKED_PHONE = re.compile(r"^\d{3}\*{4}\d{4}$")
REFUNDS = "/v3/refund/domestic/refunds"
_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')
CLOCK_WINDOW_S = 300
# A payment takes its first shipping upload and one re-upload (每笔支付单仅有一次重新发货机会); more is refused.
UPLOADS_PER_PAYMENT = 2
REUPLOAD_USED = 10060003         # the sandbox's code for "the re-upload chance is used up"


@dataclass
class PayKnobs:
    bad_signature: bool = False      # sign, then flip the signature
    stale_timestamp: bool = False    # a timestamp ten minutes old
    wrong_serial: bool = False       # a serial the hub does not hold
    payment_invisible_next: int = 0  # shipping uploads answer 10060001 (payment not yet visible) this often
    refund_answer: str = "PROCESSING"  # what a refund request answers (SUCCESS, ABNORMAL, CLOSED also happen)
    refund_outcome: str = "SUCCESS"    # what the refund notification then says
    refund_notify_after_s: float | None = 0.05   # None: held until send_refund_notifications()
    unsigned_answers: bool = False   # answer refunds without the platform's signature (a proxy, not WeChat)
    bill: BillKnobs = field(default_factory=BillKnobs)   # mismatches injected into the daily bills


@dataclass
class SimRefund:
    refund_no: str
    refund_id: str
    transaction_id: str
    order_ref: str
    amount_fen: int
    total_fen: int
    status: str
    notify_url: str
    created: str
    success_time: str | None = None
    asked: int = 1                   # how many requests named this out_refund_no


@dataclass
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes
    status: int


class WeChatPaySimulator(Simulator):
    name = "wechat_pay"

    def __init__(self, *, mch_id: str, app_id: str, app_secret: str, api_v3_key: str, serial: str,
                 private_key_pem: bytes, port: int = 0, host: str = "127.0.0.1",
                 merchant_serial: str = "", merchant_public_key_pem: bytes | None = None):
        self.mch_id, self.app_id, self.serial = mch_id, app_id, serial
        self.merchant_serial = merchant_serial
        merchant = serialization.load_pem_public_key(merchant_public_key_pem) if merchant_public_key_pem else None
        assert merchant is None or isinstance(merchant, rsa.RSAPublicKey)
        self._merchant_key = merchant
        self.refunds: dict[str, SimRefund] = {}      # out_refund_no -> the refund
        self.refund_notes: list[tuple[str, bytes]] = []   # (notify_url, body) held for the test to send
        self._aead = AESGCM(api_v3_key.encode())
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self.tokens = TokenIssuer(app_id, app_secret)
        self.knobs = PayKnobs()
        self.transactions: dict[str, dict] = {}      # transaction_id -> what was paid
        self.shipping_uploads: list[dict] = []
        self.deliveries: list[Delivery] = []
        self._seq = 0
        self._seq_lock = threading.Lock()
        self.bills = BillServer(self)
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(mch_id=env["HUB_WECHAT_MCH_ID"], app_id=env["HUB_WECHAT_APP_ID"],
                   app_secret=env["HUB_WECHAT_APP_SECRET"], api_v3_key=env["HUB_WECHAT_API_V3_KEY"],
                   serial=env["HUB_WECHAT_SERIAL"], private_key_pem=platform_private_key_pem(), port=port,
                   merchant_serial=env.get("HUB_WECHAT_MERCHANT_SERIAL", ""),
                   merchant_public_key_pem=merchant_public_key_pem())

    def setup_routes(self) -> None:
        self.route("GET", "/cgi-bin/token", self.tokens.handle)
        self.route("POST", "/wxa/sec/order/upload_shipping_info", self._upload_shipping_info)
        self.route("POST", REFUNDS, self._refund)
        self.route("GET", REFUNDS + "/*", self._query_refund)
        self.route("GET", TRADE_BILL, self._trade_bill)
        self.route("GET", BILL_DOWNLOAD, self._download_bill)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.knobs = PayKnobs()
            self.shipping_uploads.clear()
            self.deliveries.clear()
            self.refunds.clear()
            self.refund_notes.clear()
            self.transactions.clear()
            self.bills.clear()

    # -- the platform calling the hub ---------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        with self._seq_lock:
            self._seq += 1
            return f"{prefix}{int(time.time())}{self._seq:06d}"

    def notification_body(self, order_ref: str, amount_fen: int, event: str = "TRANSACTION.SUCCESS",
                          transaction_id: str | None = None, notification_id: str | None = None,
                          payer_openid: str = "oSandboxPayer", refund_fen: int | None = None,
                          refund_no: str | None = None) -> bytes:
        """The notification body exactly as the platform would send it (resource encrypted). For a
        REFUND.* event `amount_fen` is the payment's total and `refund_fen` (default: all of it) the refund."""
        transaction_id = transaction_id or self._next_id("4200")
        now = datetime.now(CST).replace(microsecond=0).isoformat()
        if event == "TRANSACTION.SUCCESS":
            kind, resource = "transaction", {
                "mchid": self.mch_id, "appid": self.app_id, "out_trade_no": order_ref,
                "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
                "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": now,
                "payer": {"openid": payer_openid},
                "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY",
                           "payer_currency": "CNY"}}
            self.take_payment(order_ref, amount_fen, transaction_id, payer_openid, now)
        elif event.startswith("REFUND."):
            refund_fen = amount_fen if refund_fen is None else refund_fen
            kind, resource = "refund", {
                "mchid": self.mch_id, "out_trade_no": order_ref, "transaction_id": transaction_id,
                "out_refund_no": refund_no or f"R{order_ref}", "refund_id": self._next_id("5030"),
                "refund_status": event.split(".", 1)[1], "user_received_account": "支付用户零钱",
                "amount": {"total": amount_fen, "refund": refund_fen, "payer_total": amount_fen,
                           "payer_refund": refund_fen}}
            if event == "REFUND.SUCCESS":
                resource["success_time"] = now
        else:
            kind, resource = "unknown", {"mchid": self.mch_id, "out_trade_no": order_ref}
        nonce = secrets.token_hex(6)          # 12 characters, as the platform uses
        ciphertext = self._aead.encrypt(nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(),
                                        kind.encode())
        envelope = {
            "id": notification_id or f"EV-{self._next_id('')}", "create_time": now,
            "resource_type": "encrypt-resource", "event_type": event,
            "summary": "支付成功" if kind == "transaction" else "退款状态变更",
            "resource": {"original_type": kind, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ciphertext).decode(),
                         "associated_data": kind, "nonce": nonce},
        }
        return json.dumps(envelope, ensure_ascii=False).encode()

    def take_payment(self, order_ref: str, amount_fen: int, transaction_id: str | None = None,
                     payer_openid: str = "oSandboxPayer", at: str | None = None) -> str:
        """A payment the platform took (it goes into that day's bill), notified or not; its transaction id."""
        transaction_id = transaction_id or self._next_id("4200")
        with self._lock:
            self.transactions[transaction_id] = {
                "order_ref": order_ref, "amount_fen": amount_fen, "payer_openid": payer_openid,
                "at": at or datetime.now(CST).replace(microsecond=0).isoformat()}
        return transaction_id

    # -- the daily bills (the hub asking; the merchant's signature checked, the answer signed) -----
    def _trade_bill(self, req: Request) -> Response:
        return self._merchant_refusal(req) or self.bills.apply(req)

    def _download_bill(self, req: Request) -> Response:
        return self._merchant_refusal(req) or self.bills.download(req)

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Wechatpay-* headers for a body, honouring the knobs."""
        ts = str(timestamp if timestamp is not None else int(time.time()) - (600 if self.knobs.stale_timestamp
                                                                               else 0))
        nonce = secrets.token_hex(16).upper()
        message = f"{ts}\n{nonce}\n".encode() + body + b"\n"
        signature = self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        if self.knobs.bad_signature:
            signature = bytes([signature[0] ^ 0xFF]) + signature[1:]
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": base64.b64encode(signature).decode(),
                "Wechatpay-Serial": "OTHERSERIAL" if self.knobs.wrong_serial else self.serial,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}

    def notify(self, url: str, order_ref: str, amount_fen: int, event: str = "TRANSACTION.SUCCESS",
               transaction_id: str | None = None, payer_openid: str = "oSandboxPayer") -> requests.Response:
        """Post a signed, encrypted notification to `url`. With faults.duplicate_callbacks the very
        same request goes twice (the second should be refused as a replay); returns the first answer."""
        body = self.notification_body(order_ref, amount_fen, event, transaction_id, payer_openid=payer_openid)
        return self.post_signed(url, body)

    def post_signed(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
        headers = headers or {**self.sign(body), "Content-Type": "application/json"}
        times = 2 if self.faults.duplicate_callbacks else 1
        first: requests.Response | None = None
        for _ in range(times):
            resp = requests.post(url, data=body, headers=headers, timeout=10)
            with self._lock:
                self.deliveries.append(Delivery(url, headers, body, resp.status_code))
            first = first or resp
        assert first is not None
        return first

    # -- the hub calling the platform ---------------------------------------------------------
    def _upload_shipping_info(self, req: Request) -> Response:
        refused = self.tokens.refuse(req)
        if refused:
            return refused
        try:
            body = req.json()
        except ValueError:
            return Response(200, {"errcode": 47001, "errmsg": "data format error"})
        key = body.get("order_key") or {}
        transaction_id = key.get("transaction_id")
        if key.get("order_number_type") != 2 or not transaction_id:
            return Response(200, {"errcode": 47001, "errmsg": "data format error: order_key"})
        with self._lock:
            paid = self.transactions.get(transaction_id)
            invisible = paid is not None and self.knobs.payment_invisible_next > 0
            if invisible:
                self.knobs.payment_invisible_next -= 1
        if paid is None or invisible:
            # Also what a payment just confirmed answers for a few seconds: not yet visible here.
            return Response(200, {"errcode": 10060001, "errmsg": "支付单不存在"})
        if body.get("logistics_type") not in (1, 2, 3, 4) or body.get("delivery_mode") not in (1, 2):
            return Response(200, {"errcode": 47001, "errmsg": "data format error: logistics_type"})
        shipments = body.get("shipping_list") or []
        if not shipments or not all(s.get("item_desc") for s in shipments):
            return Response(200, {"errcode": 47001, "errmsg": "data format error: shipping_list"})
        if body["logistics_type"] == 1 and not all(s.get("tracking_no") and s.get("express_company")
                                                   for s in shipments):
            return Response(200, {"errcode": 47001, "errmsg": "express needs tracking_no and express_company"})
        if body["logistics_type"] == 1:
            for s in shipments:
                if s["express_company"] not in DELIVERY_IDS:
                    return Response(200, {"errcode": 47001, "errmsg": f"invalid express_company "
                                                                      f"{s['express_company']!r}"})
                contact = s.get("contact") or {}
                phones = [contact.get("receiver_contact"), contact.get("consignor_contact")]
                if s["express_company"] in CONTACT_REQUIRED and not any(
                        p and _MASKED_PHONE.match(p) for p in phones):
                    return Response(200, {"errcode": 47001, "errmsg": "contact is required for SF "
                                                                      "(a masked phone, 138****0000)"})
        if not (body.get("payer") or {}).get("openid") or not body.get("upload_time"):
            return Response(200, {"errcode": 47001, "errmsg": "data format error: payer/upload_time"})
        if body["payer"]["openid"] != paid["payer_openid"]:
            return Response(200, {"errcode": 47001, "errmsg": "payer openid does not match the payment"})
        with self._lock:
            told = sum(1 for u in self.shipping_uploads if u["order_key"]["transaction_id"] == transaction_id)
            if told >= UPLOADS_PER_PAYMENT:
                return Response(200, {"errcode": REUPLOAD_USED, "errmsg": "每笔支付单仅有一次重新发货机会"})
            self.shipping_uploads.append(body)
        return Response(200, {"errcode": 0, "errmsg": "ok"})


    # -- refunds: the hub asking, the platform answering and notifying -------------------------
    def _merchant_refusal(self, req: Request) -> Response | None:
        """The platform's check of a merchant call: WECHATPAY2-SHA256-RSA2048 over
        METHOD\\nPATH\\ntimestamp\\nnonce\\nbody\\n with the merchant's key, its certificate serial, fresh."""
        scheme, _, rest = req.headers.get("Authorization", "").partition(" ")
        fields = dict(_AUTH_FIELD.findall(rest))
        if scheme != "WECHATPAY2-SHA256-RSA2048" or not all(
                fields.get(k) for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")):
            return Response(401, {"code": "SIGN_ERROR", "message": "Authorization 头缺失或格式错误"})
        if fields["mchid"] != self.mch_id:
            return Response(401, {"code": "SIGN_ERROR", "message": "商户号与签名不匹配"})
        if self._merchant_key is None or fields["serial_no"] != self.merchant_serial:
            return Response(401, {"code": "SIGN_ERROR", "message": "商户证书序列号有误"})
        try:
            age = abs(time.time() - int(fields["timestamp"]))
        except ValueError:
            age = CLOCK_WINDOW_S + 1
        if age > CLOCK_WINDOW_S:
            return Response(401, {"code": "SIGN_ERROR", "message": "签名时间戳过期"})
        path = req.path + ("?" + "&".join(f"{k}={v}" for k, vs in req.query.items() for v in vs) if req.query else "")
        message = (f"{req.method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode()
                   + req.body + b"\n")
        try:
            self._merchant_key.verify(base64.b64decode(fields["signature"]), message, padding.PKCS1v15(),
                                      hashes.SHA256())
        except Exception:  # noqa: BLE001 - any failure is the same answer
            return Response(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        return None

    def _signed(self, status: int, body: dict) -> Response:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {} if self.knobs.unsigned_answers else self.sign(raw)
        headers["Request-ID"] = secrets.token_hex(16)
        return Response(status, raw, headers, content_type="application/json; charset=utf-8")

    def _refund(self, req: Request) -> Response:
        refused = self._merchant_refusal(req)
        if refused:
            return refused
        try:
            body = req.json()
            amount = body["amount"]
            refund_no, refund_fen, total_fen = body["out_refund_no"], amount["refund"], amount["total"]
        except (ValueError, KeyError, TypeError):
            return Response(400, {"code": "PARAM_ERROR", "message": "缺少必填参数 out_refund_no 或 amount"})
        if not isinstance(refund_no, str) or not _REFUND_NO.match(refund_no):
            return Response(400, {"code": "PARAM_ERROR", "message": "out_refund_no 格式错误"})
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund_fen, total_fen)) \
                or amount.get("currency") != "CNY":
            return Response(400, {"code": "PARAM_ERROR", "message": "amount 须为正整数（分），currency 为 CNY"})
        if len(body.get("reason") or "") > 80:
            return Response(400, {"code": "PARAM_ERROR", "message": "reason 超过 80 个字符"})
        with self._lock:
            existing = self.refunds.get(refund_no)
            if existing is not None:          # the same out_refund_no: the same refund, never a second payment
                existing.asked += 1
                return self._signed(200, self._refund_view(existing))
            tx_id = body.get("transaction_id")
            if not tx_id and body.get("out_trade_no"):
                tx_id = next((t for t, p in self.transactions.items() if p["order_ref"] == body["out_trade_no"]),
                             None)
            paid = self.transactions.get(tx_id or "")
            if paid is None:
                return Response(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"})
            if total_fen != paid["amount_fen"]:
                return Response(400, {"code": "PARAM_ERROR", "message": "订单金额与原订单不一致"})
            held = sum(r.amount_fen for r in self.refunds.values()
                       if r.transaction_id == tx_id and r.status != "CLOSED")
            if held + refund_fen > total_fen:
                return Response(400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"})
            now = datetime.now(CST).replace(microsecond=0).isoformat()
            refund = SimRefund(refund_no, self._next_id("5030"), tx_id, paid["order_ref"], refund_fen, total_fen,
                               self.knobs.refund_answer, body.get("notify_url") or "", now)
            if refund.status == "SUCCESS":
                refund.success_time = now
            self.refunds[refund_no] = refund
            answer = self._refund_view(refund)
            outcome = refund.status if refund.status != "PROCESSING" else self.knobs.refund_outcome
        if refund.notify_url:
            self._notify_refund(refund, outcome)
        return self._signed(200, answer)

    def _query_refund(self, req: Request) -> Response:
        refused = self._merchant_refusal(req)
        if refused:
            return refused
        with self._lock:
            refund = self.refunds.get(req.path.rsplit("/", 1)[-1])
            if refund is None:
                return Response(404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
            return self._signed(200, self._refund_view(refund))

    @staticmethod
    def _refund_view(r: SimRefund) -> dict:
        view = {"refund_id": r.refund_id, "out_refund_no": r.refund_no, "transaction_id": r.transaction_id,
                "out_trade_no": r.order_ref, "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
                "create_time": r.created, "status": r.status, "funds_account": "AVAILABLE",
                "amount": {"total": r.total_fen, "refund": r.amount_fen, "payer_total": r.total_fen,
                           "payer_refund": r.amount_fen, "settlement_total": r.total_fen,
                           "settlement_refund": r.amount_fen, "discount_refund": 0, "currency": "CNY",
                           "refund_fee": 0},
                "promotion_detail": []}
        if r.success_time:
            view["success_time"] = r.success_time
        return view

    def refund_notification_body(self, refund: SimRefund, status: str) -> bytes:
        """REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED for `refund`, as the platform sends it."""
        now = datetime.now(CST).replace(microsecond=0).isoformat()
        resource = {"mchid": self.mch_id, "out_trade_no": refund.order_ref, "transaction_id": refund.transaction_id,
                    "out_refund_no": refund.refund_no, "refund_id": refund.refund_id, "refund_status": status,
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": refund.total_fen, "refund": refund.amount_fen,
                               "payer_total": refund.total_fen, "payer_refund": refund.amount_fen}}
        if status == "SUCCESS":
            resource["success_time"] = refund.success_time or now
        nonce = secrets.token_hex(6)
        ciphertext = self._aead.encrypt(nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(),
                                        b"refund")
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}[status]
        envelope = {"id": f"EV-{self._next_id('')}", "create_time": now, "resource_type": "encrypt-resource",
                    "event_type": f"REFUND.{status}", "summary": summary,
                    "resource": {"original_type": "refund", "algorithm": "AEAD_AES_256_GCM",
                                 "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": "refund",
                                 "nonce": nonce}}
        return json.dumps(envelope, ensure_ascii=False).encode()

    def _notify_refund(self, refund: SimRefund, status: str) -> None:
        with self._lock:
            refund.status = status
            if status == "SUCCESS" and not refund.success_time:
                refund.success_time = datetime.now(CST).replace(microsecond=0).isoformat()
            body = self.refund_notification_body(refund, status)
            delay = self.knobs.refund_notify_after_s
            if delay is None:
                self.refund_notes.append((refund.notify_url, body))
                return

        def send() -> None:
            try:
                delivered = self.post_signed(refund.notify_url, body).status_code < 300
            except requests.RequestException:
                delivered = False
            if not delivered:                     # the platform tries again later; here the test may resend
                with self._lock:
                    self.refund_notes.append((refund.notify_url, body))
        timer = threading.Timer(delay, send)
        timer.daemon = True
        timer.start()

    def take_refund_notifications(self) -> list[tuple[str, bytes]]:
        """The held refund notifications (knobs.refund_notify_after_s = None), as (notify_url, body); cleared."""
        with self._lock:
            notes, self.refund_notes = list(self.refund_notes), []
        return notes

    def send_refund_notifications(self) -> list[requests.Response]:
        """Post the held refund notifications to their notify_url, signed."""
        return [self.post_signed(url, body) for url, body in self.take_refund_notifications()]


CREDENTIALS = {
    "HUB_WECHAT_MCH_ID": "1900000001",
    "HUB_WECHAT_API_V3_KEY": "SandboxApiV3Key0123456789abcdef0",   # exactly 32 bytes (AES-256)
    "HUB_WECHAT_SERIAL": "3F1B7C2A9E0D4B6C8A5E2F1D0C9B8A7E6D5C4B3A",   # 40 hex digits, like a real platform cert
    "HUB_WECHAT_APP_ID": "wxsandbox0001",
    "HUB_WECHAT_APP_SECRET": "sandbox-wechat-app-secret",
    "HUB_WECHAT_MERCHANT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",   # the merchant's API certificate
}
assert len(CREDENTIALS["HUB_WECHAT_API_V3_KEY"].encode()) == 32


def _keys() -> dict[str, str]:
    return {"HUB_WECHAT_PLATFORM_PUBLIC_KEY": platform_public_key_pem(),
            "HUB_WECHAT_MERCHANT_PRIVATE_KEY": merchant_private_key_pem().decode()}


SANDBOX = SandboxSystem("wechat_pay", WeChatPaySimulator, 8703, "HUB_WECHAT_PAY_URL", credentials=CREDENTIALS,
                        generated=_keys)
