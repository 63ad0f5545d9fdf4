"""Local courier SF 同城 (openic.sf-express.com): quote, book, tip, pre-cancel / cancel, status query, pushes.

Every request is a JSON body POSTed to `<operation>?sign=`, sign = base64(md5_hex(body&dev_id&dev_key))
over the exact bytes sent; every answer {error_code, error_msg, result}, error_code 0 for success.
Fees are fen, weights grams, coordinates GCJ-02 (`lbs_type` 2), as config.yaml's are.

SF gives no quote number: a quote is `precreateorder`'s price, its id the hub's order id; `createorder`
(shop_order_id = the hub's order id, so sending it again is the same order) answers SF's `sf_order_id`,
the booking's shipment_ref. SF signs its pushes like requests, with the dev key: a forged push fails
the signature, and a genuine one is still a claim the status query confirms before it moves an order.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Self

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
CALLBACK_REPLY = {"error_code": 0, "error_msg": "success"}
DEFAULT_WEIGHT_G = 1000


def sf_sign(body: bytes, dev_id: str, dev_key: str) -> str:
    return base64.b64encode(hashlib.md5(body + f"&{dev_id}&{dev_key}".encode()).hexdigest().encode()).decode()


class SfSameCityConnector:
    kind = "sf_same_city"
    role = "local_courier"
    callback = "courier_claim"
    callback_accepted = CALLBACK_REPLY

    def __init__(self, name: str, base_url: str, *, dev_id: str, dev_key: str, binder: Binder,
                 retry: RetryPolicy, mapping: Mapping | None = None, timeout: float = 5.0):
        self.name, self.base_url = name, base_url.rstrip("/")
        self.dev_id, self._key = str(dev_id), dev_key
        self.binder, self.retry = SystemBinder(binder, name), retry
        self.mapping = mapping or load_mapping("sf_same_city")
        self.timeout = timeout
        self.session = http_session(base_url)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("base_url"), dev_id=system.get("dev_id"), dev_key=system.get("dev_key"),
                   binder=binder, retry=retry, mapping=load_mapping(system.get("mapping", "sf_same_city")),
                   timeout=float(system.get("timeout", 5.0)))

    # -- quote, book, tip, cancel --------------------------------------------------------------
    def _shop(self, store_id: str) -> str:
        shop = self.binder.to_external(self.name, "store", store_id)
        if shop is None:
            raise MappingError(self.mapping.system, "store", store_id, "unmapped store")
        return shop

    def _receive(self, order: OrderSnapshot) -> dict[str, Any]:
        address = order.fulfillment.address
        if address is None or address.lat is None or address.lng is None:
            raise MappingError(self.mapping.system, "fulfillment.address", None,
                               "a delivery order needs a delivery address with coordinates")
        return {"user_name": address.name or order.buyer.name, "user_phone": address.phone or order.buyer.phone,
                "user_address": address.text, "user_lat": str(address.lat), "user_lng": str(address.lng)}

    def quote(self, order: OrderSnapshot, store: LocationConfig, callback_url: str) -> DeliveryQuote:
        """precreateorder: SF's price for the basket; the createorder body to book it goes in the quote's terms."""
        receive = self._receive(order)
        weight = order.weight_g or DEFAULT_WEIGHT_G
        shop = {"shop_id": self._shop(store.id), "shop_type": 1,
                "lbs_type": int(self.mapping.operation("lbs_type")), "pay_type": 1, "is_appoint": 0}
        body = {**shop, "user_lng": receive["user_lng"], "user_lat": receive["user_lat"],
                "user_address": receive["user_address"], "weight": weight,
                "product_type": int(self.mapping.operation("product_type")), "total_price": order.total_fen}
        result = self.retry.call(self._call, "quote", body)
        create = {**shop, "shop_order_id": order.order_id, "order_source": "hub", "order_time": int(time.time()),
                  "is_insured": 0, "rider_pick_method": 1, "return_flag": 511, "version": 19,
                  "callback_url": callback_url, "receive": receive,
                  "order_detail": {"total_price": order.total_fen, "product_type": body["product_type"],
                                   "weight_gram": weight, "product_num": sum(ln.qty for ln in order.lines),
                                   "product_type_num": len(order.lines),
                                   "product_detail": [{"product_name": ln.sku, "product_num": ln.qty}
                                                      for ln in order.lines]}}
        return DeliveryQuote(carrier=self.name, quote_id=f"{order.order_id}@{int(time.time() * 1000)}",
                             fee_fen=int(result["total_price"]),
                             distance_m=int(result.get("delivery_distance_meter") or 0) or None,
                             pickup_minutes=result.get("promise_pickup_time"), weight_g=weight, terms=create)

    def book(self, quote: DeliveryQuote) -> Booking:
        """createorder with the quoted body; SF answers its own order number, the booking's reference."""
        if not quote.terms:
            raise PermanentError(self.name, f"quote {quote.quote_id} carries no createorder terms")
        result = self.retry.call(self._call, "create", dict(quote.terms))
        log.info("%s: booked %s as %s (fee %s fen)", self.name, quote.terms["shop_order_id"],
                 result["sf_order_id"], result.get("total_price"))
        return Booking(carrier=self.name, shipment_ref=str(result["sf_order_id"]),
                       fee_fen=int(result.get("total_price") or quote.fee_fen))

    def cancel(self, order_id: str, reason: str) -> int:
        body = {"order_id": order_id, "order_type": 2, "cancel_code": int(self.mapping.operation("cancel_code")),
                "cancel_reason": reason or "merchant cancelled"}
        result = self.retry.call(self._call, "cancel", body)
        fee = int(((result or {}).get("deduction_detail") or {}).get("deduction_fee") or 0)
        if fee:
            log.info("%s: cancelling %s cost a %s fen penalty", self.name, order_id, fee)
        return fee

    def cancel_terms(self, order_id: str) -> CancelTerms:
        try:
            result = self.retry.call(self._call, "precancel", {"order_id": order_id, "order_type": 2})
        except PermanentError as exc:
            if getattr(exc, "outcome", None) in ("refused", "not_found"):
                return CancelTerms(False, 0, str(exc))
            raise
        fee = int(((result or {}).get("deduction_detail") or {}).get("deduction_fee") or 0)
        return CancelTerms(True, fee)

    def add_tip(self, order_id: str, tip_fen: int, total_fen: int) -> int:
        """addordergratuityfee: SF adds `gratuity_fee` to earlier tips and answers the total."""
        result = self.retry.call(self._call, "tip", {"order_id": order_id, "order_type": 2,
                                                     "gratuity_fee": int(tip_fen)})
        return int((result or {}).get("total_gratuity_fee") or total_fen)

    def query(self, order_id: str) -> CourierState | None:
        try:
            result = self.retry.call(self._call, "status_query", {"order_id": order_id, "order_type": 2})
        except PermanentError as exc:
            if getattr(exc, "outcome", None) == "not_found":
                return None
            raise
        raw = {k: v for k, v in (result if isinstance(result, dict) else {}).items() if v not in ("", None)}
        d = self.mapping.inbound("status_query", raw)
        if d["order_ref"] != str(order_id):
            raise MappingError(self.mapping.system, "shop_order_id", d["order_ref"], f"not order {order_id}")
        return CourierState(carrier=self.name, order_ref=d["order_ref"], status=TrackingStatus(d["status"]),
                            at=d["at"], rider_name=d["rider_name"] or None, rider_phone=d["rider_phone"] or None,
                            fee_fen=d["fee_fen"], shipment_ref=d["shipment_ref"])

    def _call(self, operation: str, fields: dict[str, Any]) -> Any:
        body = json.dumps({"dev_id": int(self.dev_id), "push_time": int(time.time()), **fields},
                          ensure_ascii=False, separators=(",", ":")).encode()
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation(operation),
                         params={"sign": sf_sign(body, self.dev_id, self._key)}, data=body,
                         headers={"Content-Type": "application/json"}, timeout=self.timeout)
        try:
            answer = resp.json()
        except ValueError as exc:
            raise TransientError(self.name, f"{operation}: answer is not JSON") from exc
        code = answer.get("error_code") if isinstance(answer, dict) else None
        try:
            outcome = self.mapping.value("result_code", code)
        except MappingError:
            outcome = "permanent"
        if outcome == "ok":
            return answer.get("result")
        message = f"{operation}: code {code} {answer.get('error_msg', '')}".strip()
        error = (TransientError if outcome == "transient" else PermanentError)(self.name, message)
        error.code, error.outcome = code, outcome
        raise error

    # -- pushes -----------------------------------------------------------------------------------
    def parse_callback(self, body: bytes, query: Any = None) -> TrackingEvent:
        """Verify a push's `sign` (in its query string, computed over the body as sent) and map it."""
        sign = _first(query, "sign")
        if not sign or not hmac.compare_digest(sf_sign(body, self.dev_id, self._key).encode(), sign.encode()):
            raise SignatureError(self.name, "push without a sign, or one that does not verify")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise MappingError(self.mapping.system, "(body)", body[:80], "push is not JSON") from exc
        if not isinstance(data, dict):
            raise MappingError(self.mapping.system, "(body)", type(data).__name__, "push is not an object")
        d = self.mapping.inbound("status_push", data)
        return TrackingEvent(carrier=self.name, shipment_ref=d["shipment_ref"], status=TrackingStatus(d["status"]),
                             at=d["at"], rider_name=d["rider_name"] or None, rider_phone=d["rider_phone"] or None,
                             order_ref=d["order_ref"],
                             external_id=f"sf:{d['shipment_ref']}:{data['order_status']}:{data['push_time']}")

    def callback_reply(self) -> dict[str, Any]:
        return dict(CALLBACK_REPLY)


def _first(query: Any, name: str) -> str:
    """A query parameter from a Mapping (werkzeug's args, a dict) or a raw query string."""
    if query is None:
        return ""
    if isinstance(query, str):
        from urllib.parse import parse_qs
        return (parse_qs(query).get(name) or [""])[-1]
    value = query.get(name)
    return str(value) if value else ""


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[LocalCourier] = SfSameCityConnector
_callback_check: type[CourierCallbacks] = SfSameCityConnector      # what its callback's handler calls
