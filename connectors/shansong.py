"""Local courier 闪送 (Shansong, open.ishansong.com merchant API v5): quote, book, addition (tip), pre-cancel /
cancel, status query, and status callbacks.

Every request is a form POST of clientId, shopId, timestamp (ms), data (the business fields as JSON) and
sign = upper(md5(appSecret + "clientId"… "data"… "shopId"… "timestamp"…)); every answer {status, msg, data},
status 200 for success. Fees are fen, weights whole kg (rounded up), coordinates GCJ-02 (`lbsType` 2).

`orderCalculate` prices the basket and answers the 闪送订单号 (`orderNumber`, the issOrderNo), which is the
quote's id; `orderPlace` books that very number, so the fee quoted is the fee booked, and it is the booking's
reference. Tips, cancels and the status query name the merchant's order (`thirdOrderNo` = the hub's order id)
through `orderInfo`, which answers the order's latest Shansong order. Shansong signs its callbacks like requests
(the app secret: a forged one fails); a genuine one is still a claim the status query confirms.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import time
from typing import Any, Self
from urllib.parse import parse_qs

from hub.config import LocationConfig, SystemConfig
from hub.domain.model import (
    Booking,
    CancelTerms,
    CourierState,
    DeliveryQuote,
    OrderSnapshot,
    TrackingEvent,
    TrackingStatus,
)
from hub.ports import CourierCallbacks, LocalCourier
from mappings.engine import Mapping, load_mapping

from .base import (
    Binder,
    MappingError,
    PermanentError,
    RetryPolicy,
    SignatureError,
    TransientError,
    http_call,
    http_session,
)
from .binding import SystemBinder

log = logging.getLogger(__name__)
CALLBACK_REPLY = {"status": 200, "msg": "success"}
DEFAULT_WEIGHT_G = 1000
SIGNED = ("clientId", "data", "shopId", "timestamp")


def shansong_sign(params: dict[str, str], app_secret: str) -> str:
    text = app_secret + "".join(f"{k}{params[k]}" for k in SIGNED if params.get(k) not in (None, ""))
    return hashlib.md5(text.encode()).hexdigest().upper()


class ShansongConnector:
    kind = "shansong"
    role = "local_courier"
    callback = "courier_claim"
    callback_accepted = CALLBACK_REPLY

    def __init__(self, name: str, base_url: str, *, client_id: str, shop_id: str, app_secret: str,
                 binder: Binder, retry: RetryPolicy, mapping: Mapping | None = None,
                 city_name: str | None = None, timeout: float = 5.0):
        self.name, self.base_url = name, base_url.rstrip("/")
        self.client_id, self.shop_id, self._secret = str(client_id), str(shop_id), app_secret
        self.binder, self.retry = SystemBinder(binder, name), retry
        self.mapping = mapping or load_mapping("shansong")
        self.city_name = city_name or self.mapping.operation("city_name")
        self.timeout = timeout
        self.session = http_session(base_url)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("base_url"), client_id=system.get("client_id"), shop_id=system.get("shop_id"),
                   app_secret=system.get("app_secret"), binder=binder, retry=retry,
                   mapping=load_mapping(system.get("mapping", "shansong")), city_name=system.get("city_name"),
                   timeout=float(system.get("timeout", 5.0)))

    # -- quote, book, tip, cancel ------------------------------------------------------------------
    def quote(self, order: OrderSnapshot, store: LocationConfig, callback_url: str) -> DeliveryQuote:
        """orderCalculate: the fee and the issOrderNo that books it (Shansong keeps it 30 minutes). The callback
        URL is the account's, configured at Shansong: `callback_url` is not sent."""
        address = order.fulfillment.address
        if address is None or address.lat is None or address.lng is None:
            raise MappingError(self.mapping.system, "fulfillment.address", None,
                               "a delivery order needs a delivery address with coordinates")
        store_id = self.binder.to_external(self.name, "store", store.id)
        if store_id is None:
            raise MappingError(self.mapping.system, "store", store.id, "unmapped store")
        weight_g = order.weight_g or DEFAULT_WEIGHT_G
        data = {"cityName": self.city_name, "appointType": 0, "storeId": store_id,
                "lbsType": int(self.mapping.operation("lbs_type")),
                "sender": {"fromAddress": store.address or store.name, "fromSenderName": store.name,
                           "fromMobile": store.phone, "fromLatitude": str(store.lat),
                           "fromLongitude": str(store.lng)},
                "receiverList": [{"orderNo": order.order_id, "toAddress": address.text,
                                  "toLatitude": str(address.lat), "toLongitude": str(address.lng),
                                  "toReceiverName": address.name or order.buyer.name,
                                  "toMobile": address.phone or order.buyer.phone,
                                  "goodType": int(self.mapping.operation("good_type")),
                                  "weight": max(1, math.ceil(weight_g / 1000))}]}
        result = self.retry.call(self._call, "quote", data) or {}
        return DeliveryQuote(carrier=self.name, quote_id=str(result["orderNumber"]),
                             fee_fen=int(result.get("totalFeeAfterSave", result["totalAmount"])),
                             distance_m=int(result.get("totalDistance") or 0) or None, weight_g=weight_g)

    def book(self, quote: DeliveryQuote) -> Booking:
        """orderPlace of the quote's issOrderNo; placing it again answers the same order."""
        result = self.retry.call(self._call, "place", {"issOrderNo": quote.quote_id}) or {}
        fee = int(result.get("totalFeeAfterSave") or quote.fee_fen)
        log.info("%s: booked %s (fee %s fen)", self.name, quote.quote_id, fee)
        return Booking(carrier=self.name, shipment_ref=str(result.get("orderNumber") or quote.quote_id), fee_fen=fee)

    def _held_no(self, order_id: str) -> str | None:
        held = self.query(order_id)
        return held.shipment_ref if held is not None else None

    def cancel(self, order_id: str, reason: str) -> int:
        """abortOrder without agreeing to a send-back fee (the hub never pays for goods to ride back);
        the penalty Shansong kept (`deductAmount`, fen). Nothing held: nothing to cancel."""
        no = self._held_no(order_id)
        if no is None:
            return 0
        result = self.retry.call(self._call, "cancel", {"issOrderNo": no, "deductFlag": False}) or {}
        return int(result.get("deductAmount") or 0)

    def cancel_terms(self, order_id: str) -> CancelTerms:
        no = self._held_no(order_id)
        if no is None:
            return CancelTerms(False, 0, "Shansong holds no order for it")
        try:
            result = self.retry.call(self._call, "precancel", {"issOrderNo": no}) or {}
        except PermanentError as exc:
            if getattr(exc, "outcome", None) in ("refused", "not_found"):
                return CancelTerms(False, 0, str(exc))
            raise
        if int(result.get("sendBackFee") or 0):
            return CancelTerms(False, int(result.get("deductAmount") or 0),
                               "the rider has the goods: a cancel now pays for their ride back")
        return CancelTerms(True, int(result.get("deductAmount") or 0))

    def add_tip(self, order_id: str, tip_fen: int, total_fen: int) -> int:
        """addition: Shansong adds `additionAmount` (whole yuan, in fen) to earlier ones, only while 派单中.
        Rounded down to whole yuan, so a bounded tip stays within its bound."""
        no = self._held_no(order_id)
        amount = tip_fen // 100 * 100
        if no is None or amount <= 0:
            raise PermanentError(self.name, f"addition: no whole-yuan tip to add to {order_id}'s Shansong order")
        self.retry.call(self._call, "addition", {"issOrderNo": no, "additionAmount": amount})
        return total_fen - tip_fen + amount

    def query(self, order_id: str) -> CourierState | None:
        try:
            result = self.retry.call(self._call, "status_query", {"thirdOrderNo": order_id})
        except PermanentError as exc:
            if getattr(exc, "outcome", None) == "not_found":
                return None
            raise
        raw = {k: v for k, v in (result if isinstance(result, dict) else {}).items() if v not in ("", None)}
        d = self.mapping.inbound("status_query", raw)
        if d["order_ref"] != str(order_id):
            raise MappingError(self.mapping.system, "thirdOrderNo", d["order_ref"], f"not order {order_id}")
        status = self._status(raw.get("orderStatus"), raw.get("subOrderStatus"))
        return CourierState(carrier=self.name, order_ref=d["order_ref"], status=status, at=d["at"],
                            rider_name=d["rider_name"] or None, rider_phone=d["rider_phone"] or None,
                            fee_fen=d["fee_fen"], shipment_ref=d["shipment_ref"])

    def _status(self, status: Any, sub: Any) -> TrackingStatus:
        try:
            return TrackingStatus(self.mapping.value("order_status", f"{status}.{sub}"))
        except MappingError:
            return TrackingStatus(self.mapping.value("order_status", str(status)))

    def _call(self, operation: str, data: dict[str, Any] | None) -> Any:
        form = {"clientId": self.client_id, "shopId": self.shop_id, "timestamp": str(int(time.time() * 1000))}
        if data:
            form["data"] = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        form["sign"] = shansong_sign(form, self._secret)
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation(operation),
                         data=form, timeout=self.timeout)
        try:
            answer = resp.json()
        except ValueError as exc:
            raise TransientError(self.name, f"{operation}: answer is not JSON") from exc
        code = answer.get("status") if isinstance(answer, dict) else None
        try:
            outcome = self.mapping.value("result_code", code)
        except MappingError:
            outcome = "permanent"
        if outcome == "ok":
            return answer.get("data")
        message = f"{operation}: code {code} {answer.get('msg', '')}".strip()
        error = (TransientError if outcome == "transient" else PermanentError)(self.name, message)
        error.code, error.outcome = code, outcome
        raise error

    # -- callbacks -----------------------------------------------------------------------------------
    def parse_callback(self, body: bytes, query: Any = None) -> TrackingEvent:
        """Verify a callback's `sign` (the request envelope: clientId, shopId, timestamp, data) and map it."""
        form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
        sign = form.get("sign", "")
        if not sign or form.get("clientId") != self.client_id or \
                not hmac.compare_digest(shansong_sign(form, self._secret).encode(), sign.encode()):
            raise SignatureError(self.name, "callback without a sign, for another account, or one that does not verify")
        try:
            data = json.loads(form.get("data") or "")
        except ValueError as exc:
            raise MappingError(self.mapping.system, "data", form.get("data", "")[:80], "not JSON") from exc
        if not isinstance(data, dict):
            raise MappingError(self.mapping.system, "data", type(data).__name__, "not an object")
        d = self.mapping.inbound("notify", data)
        status = self._status(data.get("status"), data.get("subStatus"))
        return TrackingEvent(carrier=self.name, shipment_ref=d["shipment_ref"], status=status, at=d["at"],
                             detail=d["cancel_reason"] or "", rider_name=d["rider_name"] or None,
                             rider_phone=d["rider_phone"] or None, order_ref=d["order_ref"],
                             external_id=f"shansong:{d['shipment_ref']}:{data.get('status')}."
                                         f"{data.get('subStatus')}:{data.get('statusChangeTime')}")

    def callback_reply(self) -> dict[str, Any]:
        return dict(CALLBACK_REPLY)


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[LocalCourier] = ShansongConnector
_callback_check: type[CourierCallbacks] = ShansongConnector      # what its callback's handler calls
