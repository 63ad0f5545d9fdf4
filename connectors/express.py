"""Express courier: SF-style waybills, Kuaidi100-style tracking (subscribe, verified pushes, polling).

Waybill creation is idempotent on the hub's order id: SF refuses a repeated orderId
(8016), so the connector then looks the existing waybill up instead of failing.
Every tracking report becomes TrackingEvents whose external_id and `at` let the hub
drop duplicates and order out-of-order pushes; a push carries the whole history.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping as FormMapping
from typing import Any, Self
from urllib.parse import quote_plus

import requests

from hub.config import LocationConfig, SystemConfig
from hub.domain.model import Booking, OrderSnapshot, TrackingEvent, TrackingStatus
from hub.ports import ExpressCourier, TrackingPushes
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

PUSH_REPLY_OK = {"result": True, "returnCode": "200", "message": "成功"}
PUSH_REPLY_FAILED = {"result": False, "returnCode": "500", "message": "失败"}
DUPLICATE_ORDER = "8016"


class ExpressConnector:
    kind = "express_courier"
    role = "express_courier"
    callback = "express_tracking_push"
    callback_accepted = PUSH_REPLY_OK
    callback_error = {"result": False, "returnCode": "500"}   # Kuaidi100 pushes again later

    def __init__(self, name: str, base_url: str, *, partner_id: str, checkword: str, customer: str,
                 key: str, salt: str, binder: Binder, retry: RetryPolicy, mapping: Mapping | None = None,
                 sender_phone: str = "", timeout: float = 5.0):
        self.name, self.base_url = name, base_url.rstrip("/")
        self.partner_id, self._checkword = partner_id, checkword
        self.customer, self._key, self._salt = customer, key, salt
        self.binder, self.retry = SystemBinder(binder, name), retry
        self.mapping = mapping or load_mapping("express")
        self.sender_phone, self.timeout = sender_phone, timeout
        self.session = http_session(base_url)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, system.get("base_url"), partner_id=system.get("partner_id"),
                   checkword=system.get("checkword"), customer=system.get("customer"),
                   key=system.get("key"), salt=system.get("salt"), binder=binder, retry=retry,
                   mapping=load_mapping(system.get("mapping", "express")),
                   sender_phone=system.get("sender_phone", ""), timeout=float(system.get("timeout", 5.0)))

    # -- waybills (SF) ---------------------------------------------------------------------
    def create_waybill(self, order: OrderSnapshot, origin: LocationConfig) -> Booking:
        """Book a waybill from `origin` to the order's address; the same order twice gets the same one."""
        address = order.fulfillment.address
        if address is None:
            raise MappingError(self.mapping.system, "fulfillment.address", None,
                               "an express order needs a delivery address")
        shipment = {
            "order_id": order.order_id,
            # SF wants a phone for each contact: the sending store's or warehouse's own (config.yaml).
            "sender": {"company": origin.name, "name": origin.name,
                       "phone": origin.phone or self.sender_phone or None, "address": origin.address},
            "receiver": {"name": address.name or order.buyer.name, "phone": address.phone or order.buyer.phone,
                         "address": address.text},
            "declared_fen": order.total_fen,
            "lines": [{"sku": ln.sku, "qty": ln.qty} for ln in order.lines],
        }
        msg = self.mapping.outbound("waybill_order", _drop_empty(shipment), self.binder)
        result = self.retry.call(self._sf_call, self.mapping.operation("sf_create_order"), msg)
        if not result.get("success") and str(result.get("errorCode")) == DUPLICATE_ORDER:
            # Booked before (a retry after a lost answer): fetch that waybill instead.
            result = self.retry.call(self._sf_call, self.mapping.operation("sf_search_order"),
                                     {"orderId": order.order_id, "searchType": "1", "language": "zh-CN"})
        if not result.get("success"):
            raise PermanentError(self.name, f"waybill refused: {result.get('errorCode')} {result.get('errorMsg')}")
        waybill = self.mapping.inbound("waybill_result", result.get("msgData") or {})
        log.info("%s: order %s booked as waybill %s", self.name, order.order_id, waybill["waybill_no"])
        return Booking(carrier=self.name, shipment_ref=waybill["waybill_no"],
                       extra={"order_id": waybill["order_id"],
                              "company": self.mapping.operation("k100_company")})

    def _sf_call(self, service_code: str, msg: dict[str, Any]) -> dict[str, Any]:
        msg_data = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
        timestamp = str(int(time.time() * 1000))
        form = {"partnerID": self.partner_id, "requestID": uuid.uuid4().hex, "serviceCode": service_code,
                "timestamp": timestamp, "msgData": msg_data,
                "msgDigest": _sf_digest(msg_data, timestamp, self._checkword)}
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation("sf_service"),
                         data=form, timeout=self.timeout)
        body = _json(self.name, resp)
        code = str(body.get("apiResultCode"))
        outcome = self._classify("sf_api_result", code)
        if outcome != "ok":
            message = f"{service_code}: apiResultCode {code} {body.get('apiErrorMsg') or ''}".strip()
            raise (TransientError if outcome == "transient" else PermanentError)(self.name, message)
        try:
            return json.loads(body.get("apiResultData") or "")
        except (TypeError, ValueError) as exc:
            raise PermanentError(self.name, f"{service_code}: apiResultData is not JSON") from exc

    # -- tracking (Kuaidi100) -------------------------------------------------------------------
    def subscribe_tracking(self, waybill_no: str, callback_url: str, phone: str = "") -> None:
        """Ask for pushes to `callback_url`; subscribing twice is fine. `phone` is the receiver's (or
        sender's): Kuaidi100 needs it for the couriers that check it (SF, ZTO)."""
        parameters = {"callbackurl": callback_url, "salt": self._salt, "resultv2": "1"}
        param = {"company": self.mapping.operation("k100_company"), "number": waybill_no, "key": self._key,
                 "parameters": parameters | self._phone(waybill_no, phone)}
        self.retry.call(self._subscribe, param)

    def _phone(self, waybill_no: str, phone: str) -> dict[str, str]:
        """{"phone": …} when given or when the courier requires it (a MappingError if missing)."""
        company = self.mapping.operation("k100_company")
        if phone:
            return {"phone": phone}
        try:
            self.mapping.value("k100_phone_required", company)
        except MappingError:
            return {}
        raise MappingError(self.mapping.system, "phone", None,
                           f"Kuaidi100 needs a phone for {company} waybill {waybill_no}")

    def _subscribe(self, param: dict[str, Any]) -> None:
        form = {"schema": "json", "param": json.dumps(param, ensure_ascii=False)}
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation("k100_subscribe"),
                         data=form, timeout=self.timeout)
        body = _json(self.name, resp)
        code = str(body.get("returnCode"))
        outcome = self._classify("k100_subscribe_code", code)
        if outcome != "ok":
            message = f"subscribe {param['number']}: returnCode {code} {body.get('message', '')}".strip()
            raise (TransientError if outcome == "transient" else PermanentError)(self.name, message)

    def parse_tracking_push(self, form: FormMapping[str, str]) -> list[TrackingEvent]:
        """Verify a push (sign = upper(md5(param + salt))) and turn its history into events."""
        param, sign = form.get("param"), form.get("sign")
        if not param or not sign:
            raise SignatureError(self.name, "push without param or sign")
        expected = hashlib.md5((param + self._salt).encode()).hexdigest().upper()
        if not hmac.compare_digest(expected.encode(), sign.upper().encode()):   # bytes: a non-ASCII sign is just wrong
            raise SignatureError(self.name, "push sign does not verify (upper(md5(param + salt)))")
        try:
            body = json.loads(param)
        except ValueError as exc:
            raise MappingError(self.mapping.system, "param", param[:80], "not JSON") from exc
        last = body.get("lastResult") if isinstance(body, dict) else None
        if not isinstance(last, dict):
            raise MappingError(self.mapping.system, "lastResult", None, "missing required field")
        if body.get("status") == "abort" and not last.get("data"):
            return []         # given up before any step ("no record for 3 days"): nothing to apply, only the stop
        return self._events(last)

    def tracking_stopped(self, form: FormMapping[str, str]) -> tuple[str, str] | None:
        """(waybill, why) when Kuaidi100 stopped tracking it (a push with `status: abort`, e.g. no
        record for days); None while it keeps pushing. Read after `parse_tracking_push` verified it."""
        try:
            body = json.loads(form.get("param") or "")
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("status") != "abort":
            return None
        last = body.get("lastResult")
        if not isinstance(last, dict):
            last = {}
        return str(last.get("nu") or ""), str(body.get("message") or "tracking stopped")

    def company_code(self) -> str:
        """The hub's name for the courier company (`sf`): the payment platform maps it to its own
        delivery_id, Kuaidi100's code (`k100_company`) is this connector's business."""
        return self.mapping.operation("courier")

    def push_reply(self, accepted: bool = True) -> dict[str, Any]:
        """The JSON body Kuaidi100 expects back; a refusal makes it push again later."""
        return dict(PUSH_REPLY_OK if accepted else PUSH_REPLY_FAILED)

    def poll_tracking(self, waybill_no: str, phone: str = "") -> list[TrackingEvent]:
        """Ask for the history where no push arrives; [] while the courier has nothing yet."""
        return self.retry.call(self._query, waybill_no, phone)

    def _query(self, waybill_no: str, phone: str = "") -> list[TrackingEvent]:
        param = json.dumps({"com": self.mapping.operation("k100_company"), "num": waybill_no, "resultv2": "1",
                            **self._phone(waybill_no, phone)}, separators=(",", ":"))
        sign = hashlib.md5((param + self._key + self.customer).encode()).hexdigest().upper()
        resp = http_call(self.name, self.session, "POST", self.base_url + self.mapping.operation("k100_query"),
                         data={"customer": self.customer, "sign": sign, "param": param}, timeout=self.timeout)
        body = _json(self.name, resp)
        if "returnCode" in body and body.get("result") is False:
            code = str(body["returnCode"])
            outcome = self._classify("k100_query_code", code)
            if outcome == "no_result":
                return []
            message = f"query {waybill_no}: returnCode {code} {body.get('message', '')}".strip()
            raise (TransientError if outcome == "transient" else PermanentError)(self.name, message)
        return self._events(body)

    def _events(self, last: dict[str, Any]) -> list[TrackingEvent]:
        track = self.mapping.inbound("tracking", last)
        waybill = track["waybill_no"]
        events = []
        for i, step in enumerate(track["events"] or []):
            # The newest step takes the parcel's state; older ones their own status word.
            status = track["state"] if i == 0 else step["status"]
            if status is None:
                continue          # an old step without a status word: it was the newest once
            digest = hashlib.sha1(f"{step['at'].isoformat()}|{step['detail']}".encode()).hexdigest()[:16]
            events.append(TrackingEvent(
                carrier=self.name, shipment_ref=waybill, status=TrackingStatus(status), at=step["at"],
                detail=step["detail"] or "", external_id=f"kuaidi100:{waybill}:{digest}"))
        return events

    def _classify(self, value_map: str, code: str) -> str:
        try:
            return self.mapping.value(value_map, code)
        except MappingError:
            return "permanent"     # a code we do not know: do not hammer the courier with retries


def _sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """base64(md5(URLEncode(msgData + timestamp + checkword))), URLEncode as Java's URLEncoder."""
    text = quote_plus(msg_data + timestamp + checkword, safe="*").replace("~", "%7E")
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def _json(system: str, resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise TransientError(system, f"answer is not JSON (HTTP {resp.status_code})") from exc
    if not isinstance(body, dict):
        raise PermanentError(system, "answer is not a JSON object")
    return body


def _drop_empty(node: Any) -> Any:
    """Leave out empty optional values so the mapping sends nothing rather than nulls."""
    if isinstance(node, dict):
        return {k: _drop_empty(v) for k, v in node.items() if v not in (None, "")}
    if isinstance(node, list):
        return [_drop_empty(v) for v in node]
    return node


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[ExpressCourier] = ExpressConnector
_callback_check: type[TrackingPushes] = ExpressConnector      # what its callback's handler calls
