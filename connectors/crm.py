"""The loyalty CRM over REST: upsert the member on a first order, add points when one completes.

Every request is signed: X-Signature = hex HMAC-SHA256(api_key, METHOD\\nPATH\\nTIMESTAMP\\nBODY),
with the key id in X-Api-Key and unix seconds in X-Timestamp. Points carry an
Idempotency-Key per order, so a retried or replayed call adds them once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Self
from urllib.parse import quote

import requests

from hub.config import SystemConfig
from hub.domain.model import Buyer
from hub.ports import Crm, CrmRefused, PermanentError, TransientError
from mappings import Mapping, load_mapping

from .base import Binder, MappingError, RetryPolicy, http_call, http_session

# How long a consumer waits out a CRM that cannot be reached before parking the step for an operator.
OUTAGE_WAIT_S = 6 * 3600.0


def crm_signature(secret: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class CrmConnector:
    kind = "crm_rest"
    role = "crm"

    def __init__(self, name: str, mapping: Mapping, base_url: str, api_key: str, key_id: str,
                 retry: RetryPolicy, timeout: float = 5.0, session: requests.Session | None = None,
                 outage_wait_s: float = OUTAGE_WAIT_S):
        self.name, self.mapping, self.retry, self.timeout = name, mapping, retry, timeout
        self.outage_wait_s = outage_wait_s
        self.base_url = base_url.rstrip("/")
        self._secret, self._key_id = api_key, key_id
        self.session = session or http_session(self.base_url)

    @classmethod
    def from_config(cls, name: str, system: SystemConfig, binder: Binder, retry: RetryPolicy) -> Self:
        return cls(name, load_mapping(name), system.get("base_url"), system.get("api_key"),
                   system.get("key_id", "o2o-hub"), retry, timeout=float(system.get("timeout", 5.0)),
                   outage_wait_s=float(system.get("outage_wait_s", OUTAGE_WAIT_S)))

    def _call(self, method: str, path: str, payload: dict[str, Any],
              extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

        def once() -> requests.Response:
            ts = str(int(time.time()))          # signed afresh on each attempt: a retry is not stale
            op = self.mapping.operation
            headers = {"Content-Type": "application/json", op("key_id_header"): self._key_id,
                       op("timestamp_header"): ts,
                       op("signature_header"): crm_signature(self._secret, method, path, ts, body),
                       **(extra_headers or {})}
            return http_call(self.name, self.session, method, self.base_url + path, timeout=self.timeout,
                             data=body, headers=headers)

        try:
            resp = self.retry.call(once)
        except PermanentError as exc:
            raise _refusal(self.name, exc) from exc
        except TransientError as exc:
            # Down past the quick retries: a consumer keeps the step for later (retries due) instead of
            # parking it, so an outage delays the member steps and loses none.
            raise TransientError(self.name, str(exc).removeprefix(f"{self.name}: "), status=exc.status,
                                 retry_after=exc.retry_after, wait_up_to=self.outage_wait_s) from exc
        try:
            return resp.json()
        except ValueError:
            raise MappingError(self.name, "body", resp.text[:40], "answer is not JSON") from None

    def upsert_member(self, buyer: Buyer) -> str:
        """Create or update the member for this buyer; returns the CRM's member id."""
        payload = self.mapping.outbound("member", buyer)
        path = self.mapping.operation("member_upsert").format(external_ref=quote(buyer.id, safe=""))
        answer = self._call("PUT", path, payload)
        return str(self.mapping.inbound("member_reply", answer)["member_id"])

    def add_points(self, member_id: str, order_id: str, points: int) -> None:
        """Add points for a completed order, once per order however often it is called."""
        if points <= 0:
            raise MappingError(self.name, "points", points, "points must be positive")
        payload = self.mapping.outbound("points", {"order_id": order_id, "points": points})
        path = self.mapping.operation("points_add").format(member_id=quote(member_id, safe=""))
        self._call("POST", path, payload, {self.mapping.operation("idempotency_header"): f"points-{order_id}"})

    def coupon(self, verb: str, code: str, member_id: str, order_key: str, key: str | None = None) -> int:
        """lock | unlock | use | return (WeChat 商家券-style verbs), once per verb and order (or per `key`)."""
        path = self.mapping.operation("coupon").format(code=quote(code, safe=""), verb=verb)
        answer = self._call("POST", path, {"member_id": member_id, "order_no": order_key},
                            {self.mapping.operation("idempotency_header"): key or f"coupon-{verb}-{order_key}"})
        return int(answer["coupon"]["value_fen"])

    def hold_points(self, member_id: str, points: int, order_key: str) -> str:
        path = self.mapping.operation("points_hold").format(member_id=quote(member_id, safe=""))
        answer = self._call("POST", path, {"points": points, "order_no": order_key},
                            {self.mapping.operation("idempotency_header"): f"hold-{order_key}"})
        return str(answer["hold_id"])

    def settle_points(self, verb: str, member_id: str, hold_id: str) -> None:
        path = self.mapping.operation("points_settle").format(member_id=quote(member_id, safe=""),
                                                              hold_id=quote(hold_id, safe=""), verb=verb)
        self._call("POST", path, {"order_no": hold_id},
                   {self.mapping.operation("idempotency_header"): f"hold-{verb}-{hold_id}"})

    def move_points(self, member_id: str, points: int, key: str, reason: str) -> None:
        if not points:
            return
        op = "points_add" if points > 0 else "points_deduct"
        path = self.mapping.operation(op).format(member_id=quote(member_id, safe=""))
        self._call("POST", path, {"order_no": key, "points": abs(points), "reason": reason},
                   {self.mapping.operation("idempotency_header"): key})

    def close(self) -> None:
        self.session.close()


def _refusal(system: str, exc: PermanentError) -> PermanentError:
    """A CRM refusal with its reason code (`{"error": code, "message": ...}` in the answer) as CrmRefused."""
    text = str(exc).split(": ", 2)[-1]
    try:
        body = json.loads(text)
    except ValueError:
        return exc
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return exc
    return CrmRefused(system, body["error"], str(body.get("message") or ""), status=exc.status)


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[Crm] = CrmConnector
