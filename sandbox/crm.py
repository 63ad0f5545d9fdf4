"""CRM simulator: checks each request's HMAC signature, upserts members (by external ref,
then by mobile), and applies points once per Idempotency-Key."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any, Self

from .base import Request, Response, SandboxSystem, Simulator

WINDOW_S = 300


@dataclass
class Member:
    member_id: str
    external_ref: str
    name: str = ""
    mobile: str = ""
    points: int = 0
    aliases: set[str] = field(default_factory=set)

    def json(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "external_ref": self.external_ref, "name": self.name,
                "mobile": self.mobile, "points": self.points}


class CrmSimulator(Simulator):
    name = "crm"

    def __init__(self, *, api_key: str, key_id: str = "o2o-hub", port: int = 0, host: str = "127.0.0.1"):
        self._secret, self.key_id = api_key, key_id
        self.members: dict[str, Member] = {}
        self.point_entries: list[dict[str, Any]] = []          # each applied once
        self._idempotent: dict[str, tuple[str, Response]] = {}  # key -> (request fingerprint, answer)
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(api_key=env["HUB_CRM_API_KEY"], port=port)

    def setup_routes(self) -> None:
        self.route("PUT", "/v1/members/*", self._signed(self._upsert))
        self.route("POST", "/v1/members/*", self._signed(self._points))

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.members.clear()
            self.point_entries.clear()
            self._idempotent.clear()

    def member_by_ref(self, external_ref: str) -> Member | None:
        return next((m for m in self.members.values() if external_ref in {m.external_ref, *m.aliases}), None)

    # -- checks ---------------------------------------------------------------------------------
    def _signed(self, handler):
        def wrapped(req: Request) -> Response:
            h = {k.lower(): v for k, v in req.headers.items()}
            ts, sig = h.get("x-timestamp", ""), h.get("x-signature", "")
            if h.get("x-api-key") != self.key_id or not ts or not sig:
                return _error(401, "unauthorized", "missing or unknown X-Api-Key / X-Timestamp / X-Signature")
            if not ts.isdigit() or abs(time.time() - int(ts)) > WINDOW_S:
                return _error(401, "stale_request", "X-Timestamp outside the 300 s window")
            message = f"{req.method}\n{req.path}\n{ts}\n".encode() + req.body
            expected = hmac.new(self._secret.encode(), message, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, sig):
                return _error(401, "invalid_signature", "signature does not match")
            try:
                body = req.json()
            except ValueError:
                return _error(400, "invalid_json", "body is not JSON")
            if not isinstance(body, dict):
                return _error(400, "invalid_json", "body is not an object")
            return handler(req, body)
        return wrapped

    # -- handlers -------------------------------------------------------------------------------
    def _upsert(self, req: Request, body: dict[str, Any]) -> Response:
        ref = req.path.removeprefix("/v1/members/")
        if not ref or "/" in ref or body.get("external_ref") != ref:
            return _error(422, "validation_error", "external_ref must match the path")
        mobile = str(body.get("mobile") or "")
        if mobile and not re.fullmatch(r"\+?\d{6,15}", mobile):
            return _error(422, "validation_error", "mobile is not a phone number")
        with self._lock:
            member = self.member_by_ref(ref)
            created = False
            if member is None and mobile:
                member = next((m for m in self.members.values() if m.mobile == mobile), None)
                if member is not None:
                    member.aliases.add(ref)          # same person, known by phone: link, do not duplicate
            if member is None:
                member = Member(f"M{len(self.members) + 1:06d}", ref)
                self.members[member.member_id] = member
                created = True
            member.name = body.get("name") or member.name
            member.mobile = mobile or member.mobile
            return Response(201 if created else 200, {"member": member.json()})

    def _points(self, req: Request, body: dict[str, Any]) -> Response:
        m = re.fullmatch(r"/v1/members/([^/]+)/points", req.path)
        if not m:
            return _error(404, "not_found", "no such resource")
        key = {k.lower(): v for k, v in req.headers.items()}.get("idempotency-key")
        if not key:
            return _error(400, "idempotency_key_required", "Idempotency-Key header is required")
        fingerprint = hashlib.sha256(req.path.encode() + req.body).hexdigest()
        with self._lock:
            if key in self._idempotent:
                seen, answer = self._idempotent[key]
                if seen != fingerprint:
                    return _error(422, "idempotency_key_reused", "Idempotency-Key reused with another body")
                return Response(answer.status, answer.body, {"Idempotent-Replayed": "true"})
            member = self.members.get(m.group(1))
            if member is None:
                return _error(404, "member_not_found", f"no member {m.group(1)}")
            points = body.get("points")
            if not isinstance(points, int) or isinstance(points, bool) or points <= 0 or not body.get("order_no"):
                return _error(422, "validation_error", "points must be a positive integer and order_no given")
            member.points += points
            entry = {"member_id": member.member_id, "order_no": body["order_no"], "points": points,
                     "reason": body.get("reason"), "idempotency_key": key}
            self.point_entries.append(entry)
            answer = Response(201, {"entry": entry, "balance": member.points})
            self._idempotent[key] = (fingerprint, answer)
            return answer


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": code, "message": message})


SANDBOX = SandboxSystem("crm", CrmSimulator, 8702, "HUB_CRM_URL",
                        credentials={"HUB_CRM_API_KEY": "sandbox-crm-hmac-secret-0001"})
