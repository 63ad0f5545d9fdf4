"""Local delivery courier (Dada style): quote, book, cancel, status query, and status callbacks.

Every request is a signed JSON envelope; every answer {status, code, msg, result} with
code 0 for success. Busy and rate-limit codes are TransientError, any other refusal a
PermanentError naming Dada's code and message. Booking and cancelling are idempotent:
Dada's "already processed" / "already cancelled" codes count as done.

Dada signs its callbacks with an md5 of public fields (client_id, order_id, update_time): anyone
can compute it, so a parsed callback is a claim. `query` asks Dada's status API (signed with our
secret) what the delivery really is; the hub moves orders on that answer only.
"""
from __future__ import annotations

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
from hub.privacy import mask_phone
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

CANCELLABLE = {TrackingStatus.BOOKED, TrackingStatus.RIDER_ASSIGNED, TrackingStatus.RIDER_AT_STORE}
CALLBACK_REPLY = {"code": 0, "msg": "success"}   # Dada only needs an HTTP 200; it retries otherwise
# A basket whose weight the product master does not give in full is declared at 1 kg, as before weights.
DEFAULT_WEIGHT_G = 1000
# The status query's time of each step: the time of the status the delivery is in now.
STEP_TIME = {TrackingStatus.RIDER_ASSIGNED: "accepted_at",
             TrackingStatus.COLLECTED: "fetched_at", TrackingStatus.DELIVERED: "finished_at",
             TrackingStatus.CANCELLED: "cancelled_at"}


class LocalDeliveryConnector:
    kind = "local_courier"
    role = "local_courier"
    callback = "courier_claim"
    callback_accepted = CALLBACK_REPLY

    def __init__(self, name: str, base_url: str, *, app_key: str, app_secret: str, source_id: str,
                 binder: Binder, retry: RetryPolicy, mapping: Mapping | None = None,
                 city_code: str | None = None, timeout: float = 5.0):
        self.name, self.base_url = name, base_url.rstrip("/")
        self.app_key, self._secret, self.source_id = app_key, app_secret, str(source_id)
        self.binder, self.retry = SystemBinder(binder, name), retry
        self.mapping = mapping or load_mapping("local_delivery")
        self.city_code = city_code or self.mapping.operation("city_code")
        self.timeout = timeout
        self.session = http_session(base_url)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("base_url"), app_key=system.get("app_key"),
                   app_secret=system.get("app_secret"), source_id=system.get("source_id"), binder=binder,
                   retry=retry, mapping=load_mapping(system.get("mapping", "local_delivery")),
                   city_code=system.get("city_code"), timeout=float(system.get("timeout", 5.0)))

    # -- quote, book, cancel -------------------------------------------------------------------
    def quote(self, order: OrderSnapshot, store: LocationConfig, callback_url: str) -> DeliveryQuote:
        """Ask the fee for delivering `order` from `store`; the quote's id books it."""
        address = order.fulfillment.address
        if address is None:
            raise MappingError(self.mapping.system, "fulfillment.address", None,
                               "a delivery order needs a delivery address")
        canonical: dict[str, Any] = {
            "store_id": store.id, "order_id": order.order_id, "city_code": self.city_code,
            "cargo_fen": order.total_fen, "callback": callback_url, "weight_g": order.weight_g or DEFAULT_WEIGHT_G,
            "receiver": {"name": address.name or order.buyer.name or None,
                         "phone": address.phone or order.buyer.phone or None,
                         "address": address.text, "lat": address.lat, "lng": address.lng},
            "lines": [{"sku": ln.sku, "name": ln.sku, "qty": ln.qty} for ln in order.lines],
        }
        canonical["receiver"] = {k: v for k, v in canonical["receiver"].items() if v is not None}
        body = self.mapping.outbound("fee_query", canonical, self.binder)
        result = self.retry.call(self._call, "query_fee", body)
        q = self.mapping.inbound("fee_result", result if isinstance(result, dict) else {})
        distance = q["distance_m"]
        # The fee query's body is also reAddOrder's, should Dada have published this order before.
        return DeliveryQuote(carrier=self.name, quote_id=q["quote_id"], fee_fen=q["fee_fen"],
                             distance_m=int(round(distance)) if distance is not None else None,
                             terms={"order": body}, weight_g=canonical["weight_g"])

    def book(self, quote: DeliveryQuote) -> Booking:
        """addAfterQuery: order the delivery that `quote` priced (its deliveryNo freezes the fee); booking the
        same quote twice is fine. An order Dada cancelled or let expire is published again by reAddOrder."""
        try:
            self.retry.call(self._call, "add_after_query", {"deliveryNo": quote.quote_id})
        except PermanentError as exc:
            if getattr(exc, "outcome", None) != "republish" or not quote.terms.get("order"):
                raise
            result = self.retry.call(self._call, "re_add", dict(quote.terms["order"])) or {}
            fee = _fee_of(result, quote.fee_fen)
            log.info("%s: re-dispatched %s with reAddOrder (fee %s fen)", self.name, quote.quote_id, fee)
            return Booking(carrier=self.name, shipment_ref=quote.quote_id, fee_fen=fee)
        log.info("%s: booked delivery %s (fee %s fen)", self.name, quote.quote_id, quote.fee_fen)
        return Booking(carrier=self.name, shipment_ref=quote.quote_id, fee_fen=quote.fee_fen)

    def cancel(self, order_id: str, reason: str) -> int:
        """Cancel the delivery of the hub's order `order_id`; cancelling twice is fine. Dada's `deduct_fee`
        (yuan) back in fen."""
        body = {"order_id": order_id, "cancel_reason_id": int(self.mapping.operation("cancel_reason_other")),
                "cancel_reason": reason or "merchant cancelled"}
        result = self.retry.call(self._call, "cancel", body)
        deduct = round(float(result.get("deduct_fee") or 0) * 100) if isinstance(result, dict) else 0
        if deduct:
            log.info("%s: cancelling %s cost a %s fen penalty", self.name, order_id, deduct)
        return deduct

    def add_tip(self, order_id: str, tip_fen: int, total_fen: int) -> int:
        """addTip: Dada's tip is the total in yuan, and only while no rider took the order."""
        self.retry.call(self._call, "add_tip", {"order_id": order_id, "tips": round(total_fen / 100, 2),
                                                "city_code": self.city_code, "info": "no rider yet"})
        return total_fen

    def cancel_terms(self, order_id: str) -> CancelTerms:
        """Dada has no pre-cancel: its rules read from the status query (a cancel is refused once the rider has
        the goods; one at the store costs the penalty the mapping names)."""
        held = self.query(order_id)
        if held is None or held.status not in CANCELLABLE:
            return CancelTerms(False, 0, f"Dada holds the delivery as {held.status if held else 'nothing'}")
        at_store = held.status == TrackingStatus.RIDER_AT_STORE
        penalty = int(self.mapping.operation("penalty_at_store_fen")) if at_store else 0
        return CancelTerms(True, penalty)

    def query(self, order_id: str) -> CourierState | None:
        """Dada's status query for the hub's order `order_id`: its delivery now, None if Dada holds none.
        Unreachable or busy is TransientError (after retries), never None: "down" is not "no booking"."""
        try:
            result = self.retry.call(self._call, "status_query", {"order_id": order_id})
        except PermanentError as exc:
            if getattr(exc, "outcome", None) == "not_found":
                return None
            raise
        raw = {k: v for k, v in (result if isinstance(result, dict) else {}).items() if v not in ("", None)}
        d = self.mapping.inbound("status_query", raw)
        if d["order_ref"] != str(order_id):
            raise MappingError(self.mapping.system, "orderId", d["order_ref"], f"answer is not for order {order_id}")
        status = TrackingStatus(d["status"])
        return CourierState(carrier=self.name, order_ref=d["order_ref"], status=status,
                            at=d.get(STEP_TIME.get(status, "")), rider_name=d["rider_name"] or None,
                            rider_phone=d["rider_phone"] or None, fee_fen=d["fee_fen"],
                            rider_lat=d.get("rider_lat"), rider_lng=d.get("rider_lng"))

    def _call(self, operation: str, body: dict[str, Any]) -> Any:
        params = {"app_key": self.app_key, "timestamp": str(int(time.time())), "format": "json", "v": "1.0",
                  "source_id": self.source_id, "body": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}
        params["signature"] = _signature(params, self._secret)
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation(operation),
                         json=params, timeout=self.timeout)
        try:
            answer = resp.json()
        except ValueError as exc:
            raise TransientError(self.name, f"{operation}: answer is not JSON") from exc
        code = answer.get("code") if isinstance(answer, dict) else None
        try:
            outcome = self.mapping.value("result_code", code)
        except MappingError:
            outcome = "permanent"
        if outcome in ("ok", "already_done"):
            return answer.get("result")
        message = f"{operation}: code {code} {answer.get('msg', '')}".strip()
        error = (TransientError if outcome == "transient" else PermanentError)(self.name, message)
        error.code, error.outcome = code, outcome          # Dada's code, and what it means to us
        raise error

    # -- callbacks ------------------------------------------------------------------------------
    def parse_callback(self, body: bytes, query: Any = None) -> TrackingEvent:
        """Verify a status callback and map it; external_id and `at` let the hub dedupe and order."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise MappingError(self.mapping.system, "(body)", body[:80], "callback is not JSON") from exc
        if not isinstance(data, dict):
            raise MappingError(self.mapping.system, "(body)", type(data).__name__, "callback is not an object")
        parts = [data.get("client_id"), data.get("order_id"), data.get("update_time")]
        signature = data.get("signature")
        if not signature or any(p is None for p in parts):
            raise SignatureError(self.name, "callback without signature, client_id, order_id or update_time")
        expected = hashlib.md5("".join(sorted(str(p) for p in parts)).encode()).hexdigest()
        if not hmac.compare_digest(expected.encode(), str(signature).lower().encode()):   # bytes: non-ASCII is wrong
            raise SignatureError(self.name, "callback signature does not verify")
        d = self.mapping.inbound("status_callback", data)
        status = TrackingStatus(d["status"])
        log.info("%s: order %s is %s (rider %s)", self.name, d["order_ref"], status.value,
                 mask_phone(d["rider_phone"] or ""))
        return TrackingEvent(
            carrier=self.name, shipment_ref=d["shipment_ref"], status=status, at=d["at"],
            detail=d["cancel_reason"] or "", rider_name=d["rider_name"] or None,
            rider_phone=d["rider_phone"] or None, order_ref=d["order_ref"],
            external_id=f"dada:{d['shipment_ref']}:{data['order_status']}:{data['update_time']}")

    def callback_reply(self) -> dict[str, Any]:
        """The body to answer a callback with (with HTTP 200)."""
        return dict(CALLBACK_REPLY)


def _fee_of(result: Any, default: int) -> int:
    """reAddOrder's fee (yuan) in fen; the quote's when it names none."""
    fee = result.get("fee") if isinstance(result, dict) else None
    return round(float(fee) * 100) if fee is not None else default


def _signature(params: dict[str, str], secret: str) -> str:
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "signature")
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()



# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[LocalCourier] = LocalDeliveryConnector
_callback_check: type[CourierCallbacks] = LocalDeliveryConnector      # what its callback's handler calls
