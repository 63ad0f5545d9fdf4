"""WeChat Pay v3: verify and decrypt payment notifications; upload shipping info after dispatch.

A notification is trusted only when its RSA-SHA256 signature over
`timestamp\\nnonce\\nbody\\n` verifies with the platform key whose serial we hold, its
timestamp is within 300 s, and its nonce has not been seen; then `resource` is decrypted
with AEAD_AES_256_GCM under the APIv3 key and mapped to a PaymentNotice.
"""
from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping as Headers
from datetime import UTC, datetime
from typing import Self

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.config import SystemConfig
from hub.domain.model import OrderSnapshot, PaymentNotice
from mappings import Mapping, load_mapping

from .base import Binder, MappingError, PermanentError, RetryPolicy, SignatureError
from .wechat_api import WeChatApi

CLOCK_WINDOW_S = 300
NONCE_MEMORY = 10_000


class WeChatPayConnector:
    def __init__(self, name: str, mapping: Mapping, *, mch_id: str, api_v3_key: str, serial: str,
                 platform_public_key: str, api: WeChatApi | None, retry: RetryPolicy,
                 nonce_memory: int = NONCE_MEMORY):
        self.name, self.mapping, self.retry = name, mapping, retry
        self._mch_id, self._serial = mch_id, serial
        key = api_v3_key.encode()
        if len(key) != 32:
            raise ValueError(f"{name}: api_v3_key must be 32 bytes for AES-256-GCM")
        self._aead = AESGCM(key)
        public = serialization.load_pem_public_key(platform_public_key.encode())
        if not isinstance(public, rsa.RSAPublicKey):
            raise ValueError(f"{name}: platform_public_key is not an RSA public key")
        self._public = public
        self._api = api
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._nonce_cap = nonce_memory
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        mapping = load_mapping(name)
        api = None
        # The shipping-info upload is a mini-program API: it needs the app's id and secret.
        if system.get("app_id") and system.get("app_secret"):
            api = WeChatApi(name, mapping, system.get("api_base_url") or system.get("base_url"),
                            system.get("app_id"), system.get("app_secret"),
                            timeout=float(system.get("timeout", 5.0)))
        return cls(name, mapping, mch_id=str(system.get("mch_id")), api_v3_key=system.get("api_v3_key"),
                   serial=system.get("platform_cert_serial"),
                   platform_public_key=system.get("platform_public_key"), api=api, retry=retry)

    # -- inbound: payment notifications -----------------------------------------------------
    def parse_notification(self, headers: Headers[str, str], body: bytes,
                           now: datetime | None = None) -> PaymentNotice:
        """Verify, decrypt and map one notification; raises SignatureError or MappingError."""
        self._verify(headers, body, now or datetime.now(UTC))
        try:
            envelope = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise MappingError(self.name, "body", body[:40], "notification is not JSON") from None
        note = self.mapping.inbound("notification", envelope)
        event_type = note["event_type"]
        event = self.mapping.value("event_type", event_type)
        entity = self.mapping.value("resource", event_type)
        resource = self._decrypt(note)
        fields = self.mapping.inbound(entity, resource)
        if fields["mch_id"] != self._mch_id:
            raise MappingError(self.name, "mchid", fields["mch_id"], "notification is for another merchant")
        if fields["amount_fen"] < 0:
            raise MappingError(self.name, "amount", fields["amount_fen"], "negative amount")
        return PaymentNotice(event=event, order_ref=fields["order_ref"],
                             transaction_id=fields["transaction_id"], amount_fen=fields["amount_fen"],
                             at=fields["at"], external_id=note["external_id"])

    def _verify(self, headers: Headers[str, str], body: bytes, now: datetime) -> None:
        h = {k.lower(): v for k, v in headers.items()}
        wanted = ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial")
        missing = [name for name in wanted if not h.get(name)]
        if missing:
            raise SignatureError(self.name, f"missing signature header(s): {', '.join(missing)}")
        timestamp, nonce, signature = h["wechatpay-timestamp"], h["wechatpay-nonce"], h["wechatpay-signature"]
        if h["wechatpay-serial"] != self._serial:
            raise SignatureError(self.name, "unknown platform certificate serial "
                                            f"{h['wechatpay-serial']!r}")
        if signature.startswith(self.mapping.operation("signature_probe_prefix")):
            raise SignatureError(self.name, "signature probe request refused")
        try:
            age = abs(now.timestamp() - int(timestamp))
        except ValueError:
            raise SignatureError(self.name, f"bad timestamp {timestamp!r}") from None
        if age > CLOCK_WINDOW_S:
            raise SignatureError(self.name, f"stale timestamp: {int(age)} s from now (window "
                                            f"{CLOCK_WINDOW_S} s)")
        message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        try:
            self._public.verify(base64.b64decode(signature, validate=True), message,
                                padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError(self.name, "bad signature") from None
        with self._lock:
            if nonce in self._nonces:
                raise SignatureError(self.name, "replayed notification (nonce already seen)")
            self._nonces[nonce] = None
            while len(self._nonces) > self._nonce_cap:
                self._nonces.popitem(last=False)

    def _decrypt(self, note: dict) -> dict:
        if note["algorithm"] != self.mapping.operation("algorithm"):
            raise MappingError(self.name, "resource.algorithm", note["algorithm"], "unsupported algorithm")
        try:
            plain = self._aead.decrypt(note["nonce"].encode(), base64.b64decode(note["ciphertext"]),
                                       (note["associated_data"] or "").encode() or None)
            return json.loads(plain)
        except (InvalidTag, binascii.Error, ValueError):
            raise MappingError(self.name, "resource.ciphertext", "<encrypted>",
                               "cannot decrypt resource (wrong APIv3 key or tampered)") from None

    # -- outbound: shipping info ------------------------------------------------------------
    def upload_shipping_info(self, order: OrderSnapshot, transaction_id: str, logistics_type: str,
                             tracking_no: str | None = None, express_company: str | None = None) -> None:
        """Tell WeChat the order shipped (express), left with a rider (same_city) or was picked up."""
        if self._api is None:
            raise PermanentError(self.name, "app_id/app_secret not configured: the shipping-info upload "
                                            "needs the mini-program's credentials")
        if logistics_type == "express" and not (tracking_no and express_company):
            raise MappingError(self.name, "tracking_no", tracking_no,
                               "express shipping needs a tracking number and an express company")
        item_desc = ", ".join(f"{line.sku} x{line.qty}" for line in order.lines)[:120]
        shipment = {"item_desc": item_desc}
        if tracking_no:
            shipment |= {"tracking_no": tracking_no, "express_company": express_company}
        body = self.mapping.outbound("shipping_info", {
            "transaction_id": transaction_id, "logistics_type": logistics_type, "shipments": [shipment],
            "upload_time": datetime.now(UTC), "payer_openid": order.buyer.id,
        })
        self.retry.call(self._api.post, "upload_shipping_info", body)

    def close(self) -> None:
        if self._api is not None:
            self._api.session.close()

