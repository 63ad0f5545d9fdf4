"""WeChat Pay v3: verify and decrypt payment and refund notifications; ask for refunds; upload
shipping info after dispatch.

A notification is trusted only when its RSA-SHA256 signature over
`timestamp\\nnonce\\nbody\\n` verifies with the platform key named by its `Wechatpay-Serial`
(`PlatformKeys`: certificate serials and public-key ids side by side), its
timestamp is within 300 s, and its nonce has not been seen; then `resource` is decrypted
with AEAD_AES_256_GCM under the APIv3 key and mapped to a PaymentNotice.

A refund (`POST /v3/refund/domestic/refunds`) is signed WECHATPAY2-SHA256-RSA2048 over
`METHOD\nPATH\ntimestamp\nnonce\nbody\n` with the merchant's API key, and its answer is trusted
only when signed by the platform like a notification (the official SDK refuses an unsigned 2xx).
The platform pays a refund once per out_refund_no: asking again answers the same refund.

The daily bills (`GET /v3/bill/tradebill`, ALL and REFUND, GZIP): the signed answer gives the file's SHA1 and
its `download_url`, fetched with the merchant's signature on the same host only; a file whose SHA1 is not the
signed one raises BillIntegrityError (connectors/wechat_bill_file.py reads the file).
"""
from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Mapping as Headers
from datetime import UTC, date, datetime
from typing import Self
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.config import SystemConfig
from hub.domain.model import OrderSnapshot, PaymentNotice, RefundAnswer, RefundRequest
from hub.domain.payment_bills import Bill
from hub.ports import BillIntegrityError, PaymentNotices, PaymentPlatform
from mappings import Mapping, load_mapping

from . import wechat_bill_file
from .base import Binder, MappingError, PermanentError, RetryPolicy, SignatureError, TransientError, http_session
from .wechat_api import WeChatApi

# -- the platform's verification keys ----------------------------------------------------------------------------------
# The WeChat Pay platform's verification keys, by the `Wechatpay-Serial` a notification names.
#
# The platform rotates them: a platform certificate's serial is 40 hex digits (written in either
# case, so it is compared as a number), and the newer platform public keys are named by an id
# `PUB_KEY_ID_…`. During a switch-over notifications come signed with either, so the hub holds
# both side by side, and a serial it does not hold is refused.

_CERT_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,40}$")
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"


def serial_key(serial: str) -> str:
    """The form serials are compared in: a certificate serial as its number, a key id as is."""
    text = serial.strip()
    if text.startswith(PUBLIC_KEY_ID_PREFIX):
        return text
    if _CERT_SERIAL.match(text):
        return f"cert:{int(text, 16):x}"
    raise ValueError(f"{serial!r} is neither a certificate serial (hex) nor a public key id ({PUBLIC_KEY_ID_PREFIX}…)")


class PlatformKeys:
    """serial -> RSA public key."""

    def __init__(self, keys: Iterable[tuple[str, str]]):
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        for serial, pem in keys:
            public = serialization.load_pem_public_key(pem.encode())
            if not isinstance(public, rsa.RSAPublicKey):
                raise ValueError(f"the key for {serial} is not an RSA public key")
            self._keys[serial_key(serial)] = public
        if not self._keys:
            raise ValueError("no platform key configured")

    def get(self, serial: str) -> rsa.RSAPublicKey | None:
        try:
            return self._keys.get(serial_key(serial))
        except ValueError:
            return None

    def __len__(self) -> int:
        return len(self._keys)


# -- the connector -----------------------------------------------------------------------------------------------------

CLOCK_WINDOW_S = 300
NONCE_MEMORY = 10_000


class WeChatPayConnector:
    kind = "wechat_pay"
    role = "payment"
    callback = "payment_notice"
    callback_accepted = {"code": "SUCCESS"}
    callback_error = {"code": "FAIL"}     # WeChat Pay reads `code`; anything but SUCCESS makes it notify again

    def __init__(self, name: str, mapping: Mapping, *, mch_id: str, api_v3_key: str,
                 platform_keys: list[tuple[str, str]], api: WeChatApi | None, retry: RetryPolicy,
                 nonce_memory: int = NONCE_MEMORY, pay_base_url: str = "", merchant_serial: str = "",
                 merchant_private_key: str = "", timeout: float = 10.0):
        self.name, self.mapping, self.retry = name, mapping, retry
        self._mch_id = mch_id
        self._pay_base = pay_base_url.rstrip("/")
        self._merchant_serial = merchant_serial
        self._merchant_key: rsa.RSAPrivateKey | None = None
        if merchant_private_key:
            try:
                key = serialization.load_pem_private_key(merchant_private_key.encode(), password=None)
            except ValueError:
                raise ValueError(f"{name}: merchant_private_key is not a PEM private key") from None
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{name}: merchant_private_key must be an RSA key (apiclient_key.pem)")
            self._merchant_key = key
        self._timeout = timeout
        self._pay_session = http_session(self._pay_base)
        v3_key = api_v3_key.encode()
        if len(v3_key) != 32:
            raise ValueError(f"{name}: api_v3_key must be 32 bytes for AES-256-GCM")
        self._aead = AESGCM(v3_key)
        try:
            self._keys = PlatformKeys(platform_keys)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
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
        keys = [(system.get("platform_cert_serial"), system.get("platform_public_key"))]
        # During the platform's switch-over: further keys by certificate serial or public key id.
        keys += [(k["serial"], k["public_key"]) for k in system.get("platform_keys") or []]
        return cls(name, mapping, mch_id=str(system.get("mch_id")), api_v3_key=system.get("api_v3_key"),
                   platform_keys=[(str(s), p) for s, p in keys if s and p], api=api, retry=retry,
                   pay_base_url=system.get("pay_base_url") or system.get("base_url") or "",
                   merchant_serial=str(system.get("merchant_serial") or ""),
                   merchant_private_key=system.get("merchant_private_key") or "",
                   timeout=float(system.get("timeout", 10.0)))

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
        if entity == "refund":
            return PaymentNotice(event=event, order_ref=fields["order_ref"], transaction_id=fields["transaction_id"],
                                 amount_fen=fields["amount_fen"],
                                 at=fields.get("at") or note.get("created_at") or datetime.now(UTC),
                                 external_id=note["external_id"], refund_no=fields["refund_no"],
                                 refund_id=fields["refund_id"], refund_status=fields["state"],
                                 paid_fen=fields["paid_fen"])
        return PaymentNotice(event=event, order_ref=fields["order_ref"],
                             transaction_id=fields["transaction_id"], amount_fen=fields["amount_fen"],
                             at=fields["at"], external_id=note["external_id"],
                             payer_id=fields.get("payer_openid") or "")

    def _verify(self, headers: Headers[str, str], body: bytes, now: datetime, what: str = "notification") -> None:
        h = {k.lower(): v for k, v in headers.items()}
        wanted = ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial")
        missing = [name for name in wanted if not h.get(name)]
        if missing:
            raise SignatureError(self.name, f"missing signature header(s): {', '.join(missing)}")
        timestamp, nonce, signature = h["wechatpay-timestamp"], h["wechatpay-nonce"], h["wechatpay-signature"]
        public = self._keys.get(h["wechatpay-serial"])
        if public is None:
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
            public.verify(base64.b64decode(signature, validate=True), message,
                                padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError(self.name, "bad signature") from None
        with self._lock:
            if nonce in self._nonces:
                raise SignatureError(self.name, f"replayed {what} (nonce already seen)")
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

    # -- outbound: refunds -----------------------------------------------------------------
    def request_refund(self, refund: RefundRequest) -> RefundAnswer:
        """Ask the platform to pay `refund.amount_fen` of a payment back; the same refund_no is the same refund.

        Transport failures, 5xx, 429 and the platform's passing errors (SYSTEM_ERROR, FREQUENCY_LIMITED,
        NOT_ENOUGH) are TransientError and retried by the same number; a refusal is PermanentError;
        an answer without the platform's signature is SignatureError."""
        self._need_merchant_key()
        body = self.mapping.outbound("refund_request", {
            "refund_no": refund.refund_no, "payment_ref": refund.payment_ref, "reason": refund.reason or None,
            "notify_url": refund.notify_url, "amount_fen": refund.amount_fen, "paid_fen": refund.paid_fen})
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        answer = self.retry.call(self._signed_call, "POST", self.mapping.operation("refund"), raw)
        fields = self.mapping.inbound("refund_answer", answer)
        if fields["refund_no"] != refund.refund_no:
            raise MappingError(self.name, "out_refund_no", fields["refund_no"], "the answer is for another refund")
        return RefundAnswer(refund_no=fields["refund_no"], refund_id=fields["refund_id"], status=fields["status"],
                            amount_fen=fields["amount_fen"], at=fields.get("at"))

    def query_refund(self, refund_no: str) -> RefundAnswer:
        """The platform's word on a refund now (`GET /v3/refund/domestic/refunds/{out_refund_no}`), signed."""
        self._need_merchant_key()
        answer = self.retry.call(self._signed_call, "GET", self.mapping.operation("refund") + "/" + refund_no, b"")
        fields = self.mapping.inbound("refund_answer", answer)
        if fields["refund_no"] != refund_no:
            raise MappingError(self.name, "out_refund_no", fields["refund_no"], "the answer is for another refund")
        return RefundAnswer(refund_no=fields["refund_no"], refund_id=fields["refund_id"], status=fields["status"],
                            amount_fen=fields["amount_fen"], at=fields.get("at"))

    # -- outbound: the daily bills ----------------------------------------------------------------
    def daily_bill(self, day: date) -> Bill:
        """The trade bill (ALL) and the refund bill (REFUND) of `day`, each verified against its signed SHA1."""
        self._need_merchant_key()
        trade = self._bill_text(day, "ALL")
        refund = self._bill_text(day, "REFUND")
        return Bill(day=day.isoformat(), payments=tuple(wechat_bill_file.payments(self.mapping, trade)),
                    refunds=tuple(wechat_bill_file.refunds(self.mapping, refund)))

    def _bill_text(self, day: date, bill_type: str) -> str:
        path = f"{self.mapping.operation('trade_bill')}?bill_date={day.isoformat()}&bill_type={bill_type}&tar_type=GZIP"
        answer = self.retry.call(self._signed_call, "GET", path, b"")
        hash_type, url = answer.get("hash_type"), answer.get("download_url")
        expected = str(answer.get("hash_value") or "")
        if hash_type != "SHA1" or not expected or not isinstance(url, str):
            raise MappingError(self.name, "hash_type/hash_value/download_url", hash_type, "not a bill answer")
        where, home = urlsplit(url), urlsplit(self._pay_base)
        if (where.scheme, where.netloc) != (home.scheme, home.netloc):
            # The merchant's signature goes to the platform's own host only.
            raise MappingError(self.name, "download_url", url, "the bill is offered on another host")
        raw = self.retry.call(self._download, where.path + (f"?{where.query}" if where.query else ""))
        try:
            content = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            content = raw                              # served uncompressed: the digest decides
        actual = hashlib.sha1(content).hexdigest()
        if actual.lower() != expected.lower():
            raise BillIntegrityError(self.name, f"{bill_type} bill of {day}: SHA1 {actual} is not the signed "
                                                f"{expected.lower()}")
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            raise MappingError(self.name, "bill", "<bytes>", "the bill is not UTF-8") from None

    def _download(self, path: str) -> bytes:
        """The bill file: signed like any merchant call; the platform does not sign the file (its digest does)."""
        headers = {"Authorization": self.authorization("GET", path, b"")}
        try:
            resp = self._pay_session.get(self._pay_base + path, headers=headers, timeout=self._timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(self.name, f"bill download: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientError(self.name, f"bill download: HTTP {resp.status_code}", status=resp.status_code)
        if resp.status_code != 200:
            raise PermanentError(self.name, f"bill download: HTTP {resp.status_code} {resp.text[:200]}",
                                 status=resp.status_code)
        return resp.content

    def _need_merchant_key(self) -> None:
        if self._merchant_key is None or not self._merchant_serial or not self._pay_base:
            raise PermanentError(self.name, "merchant_private_key, merchant_serial and base_url are needed to "
                                            "ask for refunds")

    def authorization(self, method: str, path: str, body: bytes, timestamp: int | None = None,
                      nonce: str | None = None) -> str:
        """The `Authorization` header of a merchant API call (WECHATPAY2-SHA256-RSA2048)."""
        assert self._merchant_key is not None
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or secrets.token_hex(16).upper()
        message = f"{method}\n{path}\n{ts}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64encode(self._merchant_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{self._mch_id}",nonce_str="{nonce}",signature="{signature}",'
                f'timestamp="{ts}",serial_no="{self._merchant_serial}"')

    def _signed_call(self, method: str, path: str, body: bytes) -> dict:
        operation = f"{method} {path}"
        headers = {"Authorization": self.authorization(method, path, body), "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        try:
            resp = self._pay_session.request(method, self._pay_base + path, data=body or None, headers=headers,
                                             timeout=self._timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(self.name, f"{operation}: {type(exc).__name__}: {exc}") from exc
        if 200 <= resp.status_code < 300:
            # The answer is the platform's only if it signed it (a proxy's or an attacker's 200 is not).
            self._verify(resp.headers, resp.content, datetime.now(UTC), "answer")
            try:
                return resp.json()
            except ValueError:
                raise TransientError(self.name, f"{operation}: answer is not JSON") from None
        try:
            error = resp.json()
        except ValueError:
            error = {}
        code, message = str(error.get("code") or ""), str(error.get("message") or resp.text[:200])
        text = f"{operation}: HTTP {resp.status_code} {code}: {message}"
        if resp.status_code == 429 or resp.status_code >= 500 or self._passing(code):
            raise TransientError(self.name, text, status=resp.status_code)
        raise PermanentError(self.name, text, status=resp.status_code)

    def _passing(self, code: str) -> bool:
        try:
            return self.mapping.value("refund_error", code) == "transient"
        except MappingError:
            return False

    # -- outbound: shipping info ------------------------------------------------------------
    def upload_shipping_info(self, order: OrderSnapshot, transaction_id: str, logistics_type: str,
                             tracking_no: str | None = None, express_company: str | None = None) -> None:
        """Tell WeChat the order shipped (express), left with a rider (same_city) or was picked up.

        `express_company` is the hub's name for the courier (`sf`); WeChat wants its own
        delivery_id (`SF`), and for some couriers (SF) a masked contact phone. The payer is the
        openid the payment notification named (kept on the buyer), else the buyer's id."""
        if self._api is None:
            raise PermanentError(self.name, "app_id/app_secret not configured: the shipping-info upload "
                                            "needs the mini-program's credentials")
        if logistics_type == "express" and not (tracking_no and express_company):
            raise MappingError(self.name, "tracking_no", tracking_no,
                               "express shipping needs a tracking number and an express company")
        item_desc = ", ".join(f"{line.sku} x{line.qty}" for line in order.lines)[:120]
        shipment: dict[str, object] = {"item_desc": item_desc}
        if tracking_no and express_company:
            delivery_id = self.mapping.value("delivery_id", express_company)
            shipment |= {"tracking_no": tracking_no, "express_company": delivery_id}
            if self._needs_contact(delivery_id):
                phone = (order.fulfillment.address.phone if order.fulfillment.address else "") or order.buyer.phone
                if not phone:
                    raise MappingError(self.name, "receiver_contact", None,
                                       f"{delivery_id} needs the receiver's phone (masked) and the order has none")
                shipment["receiver_contact"] = mask_phone(phone)
        body = self.mapping.outbound("shipping_info", {
            "transaction_id": transaction_id, "logistics_type": logistics_type, "shipments": [shipment],
            "upload_time": datetime.now(UTC), "payer_openid": order.buyer.openid or order.buyer.id,
        })
        self.retry.call(self._api.post, "upload_shipping_info", body)

    def _needs_contact(self, delivery_id: str) -> bool:
        try:
            return self.mapping.value("contact_required", delivery_id) == "receiver"
        except MappingError:
            return False

    def close(self) -> None:
        self._pay_session.close()
        if self._api is not None:
            self._api.http.close()



def mask_phone(phone: str) -> str:
    """WeChat's form for a contact phone: the middle four digits hidden (138****1111)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[PaymentPlatform] = WeChatPayConnector
_callback_check: type[PaymentNotices] = WeChatPayConnector      # what its callback's handler calls
