"""WeChat Pay simulator: signs and encrypts payment notifications and posts them to the hub,
and serves the mini-program shipping-info upload (with its access token)."""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Self

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .base import Request, Response, Simulator
from .credentials import platform_private_key_pem
from .wechat_tokens import TokenIssuer

CST = timezone(timedelta(hours=8))
# WeChat's own express company ids (get_delivery_list), a few of them; Kuaidi100's codes are not these.
DELIVERY_IDS = {"SF", "ZTO", "YTO", "STO", "YD", "JD", "EMS", "JTSD", "DBL", "BEST"}
CONTACT_REQUIRED = {"SF"}            # SF shipments need a contact phone, masked
_MASKED_PHONE = re.compile(r"^\d{3}\*{4}\d{4}$")


@dataclass
class PayKnobs:
    bad_signature: bool = False      # sign, then flip the signature
    stale_timestamp: bool = False    # a timestamp ten minutes old
    wrong_serial: bool = False       # a serial the hub does not hold
    payment_invisible_next: int = 0  # shipping uploads answer 10060001 (payment not yet visible) this often


@dataclass
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes
    status: int


class WeChatPaySimulator(Simulator):
    name = "wechat_pay"

    def __init__(self, *, mch_id: str, app_id: str, app_secret: str, api_v3_key: str, serial: str,
                 private_key_pem: bytes, port: int = 0, host: str = "127.0.0.1"):
        self.mch_id, self.app_id, self.serial = mch_id, app_id, serial
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
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(mch_id=env["HUB_WECHAT_MCH_ID"], app_id=env["HUB_WECHAT_APP_ID"],
                   app_secret=env["HUB_WECHAT_APP_SECRET"], api_v3_key=env["HUB_WECHAT_API_V3_KEY"],
                   serial=env["HUB_WECHAT_SERIAL"], private_key_pem=platform_private_key_pem(), port=port)

    def setup_routes(self) -> None:
        self.route("GET", "/cgi-bin/token", self.tokens.handle)
        self.route("POST", "/wxa/sec/order/upload_shipping_info", self._upload_shipping_info)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.knobs = PayKnobs()
            self.shipping_uploads.clear()
            self.deliveries.clear()

    # -- the platform calling the hub ---------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        with self._seq_lock:
            self._seq += 1
            return f"{prefix}{int(time.time())}{self._seq:06d}"

    def notification_body(self, order_ref: str, amount_fen: int, event: str = "TRANSACTION.SUCCESS",
                          transaction_id: str | None = None, notification_id: str | None = None,
                          payer_openid: str = "oSandboxPayer") -> bytes:
        """The notification body exactly as the platform would send it (resource encrypted)."""
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
            with self._lock:
                self.transactions[transaction_id] = {"order_ref": order_ref, "amount_fen": amount_fen,
                                                     "payer_openid": payer_openid}
        elif event == "REFUND.SUCCESS":
            kind, resource = "refund", {
                "mchid": self.mch_id, "out_trade_no": order_ref, "transaction_id": transaction_id,
                "out_refund_no": f"R{order_ref}", "refund_id": self._next_id("5030"),
                "refund_status": "SUCCESS", "success_time": now,
                "user_received_account": "支付用户零钱",
                "amount": {"total": amount_fen, "refund": amount_fen, "payer_total": amount_fen,
                           "payer_refund": amount_fen}}
        else:
            kind, resource = "unknown", {"mchid": self.mch_id, "out_trade_no": order_ref}
        nonce = secrets.token_hex(6)          # 12 characters, as the platform uses
        ciphertext = self._aead.encrypt(nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(),
                                        kind.encode())
        envelope = {
            "id": notification_id or f"EV-{self._next_id('')}", "create_time": now,
            "resource_type": "encrypt-resource", "event_type": event,
            "summary": "支付成功" if kind == "transaction" else "退款成功",
            "resource": {"original_type": kind, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(ciphertext).decode(),
                         "associated_data": kind, "nonce": nonce},
        }
        return json.dumps(envelope, ensure_ascii=False).encode()

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
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                "Content-Type": "application/json"}

    def notify(self, url: str, order_ref: str, amount_fen: int, event: str = "TRANSACTION.SUCCESS",
               transaction_id: str | None = None, payer_openid: str = "oSandboxPayer") -> requests.Response:
        """Post a signed, encrypted notification to `url`. With faults.duplicate_callbacks the very
        same request goes twice (the second should be refused as a replay); returns the first answer."""
        body = self.notification_body(order_ref, amount_fen, event, transaction_id, payer_openid=payer_openid)
        return self.post_signed(url, body)

    def post_signed(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
        headers = headers or self.sign(body)
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
            self.shipping_uploads.append(body)
        return Response(200, {"errcode": 0, "errmsg": "ok"})

