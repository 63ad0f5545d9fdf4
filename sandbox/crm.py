"""CRM simulator: checks each request's HMAC signature, upserts members (by external ref,
then by mobile), applies points once per Idempotency-Key, and locks, uses and returns coupons and
point holds for orders (`crm_wallet.py`), each call once per Idempotency-Key."""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from typing import Any, Self

from .base import Request, Response, SandboxSystem, Simulator
from .crm_wallet import Coupon, Wallet

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
        self.wallet = Wallet()
        super().__init__(host, port)

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Self:
        return cls(api_key=env["HUB_CRM_API_KEY"], port=port)

    def setup_routes(self) -> None:
        self.route("PUT", "/v1/members/*", self._signed(self._upsert))
        self.route("POST", "/v1/members/*", self._signed(self._once(self._member_post)))
        self.route("POST", "/v1/coupons/*", self._signed(self._once(self._coupon)))
        self.route("POST", "/_sim/faults", self._set_faults)

    # -- the sandbox's fault endpoint (not the CRM's API): fail chosen calls, or be down for a while --------
    def _set_faults(self, req: Request) -> Response:
        """`{fail_next, only_paths, error_status, down_for_s}`: the next `fail_next` requests to paths starting
        with one of `only_paths` (all, if none) answer `error_status`; `down_for_s` answers every request so
        for that many seconds of wall-clock time. `{}` clears them."""
        try:
            body = req.json() or {}
            paths = tuple(str(p) for p in body.get("only_paths") or ())
            fail_next, status = int(body.get("fail_next") or 0), int(body.get("error_status") or 503)
            down_for = float(body.get("down_for_s") or 0)
        except (ValueError, TypeError, AttributeError):
            return _error(400, "invalid_faults", "fail_next, only_paths, error_status, down_for_s")
        with self._lock:
            self.faults.fail_next, self.faults.only_paths, self.faults.error_status = fail_next, paths, status
            self.faults.down_until = time.monotonic() + down_for if down_for > 0 else 0.0
        return Response(200, {"fail_next": fail_next, "only_paths": list(paths), "error_status": status,
                              "down_for_s": down_for})

    # -- the test's and the demo's hands on the CRM's data ----------------------------------------
    def issue_coupon(self, member_id: str, code: str, value_fen: int) -> Coupon:
        with self._lock:
            coupon = self.wallet.coupons[code] = Coupon(code, member_id, value_fen)
            return coupon

    def enrol(self, external_ref: str, points: int = 0) -> Member:
        """A member known before the hub's first call (e.g. with points from the store's loyalty card)."""
        with self._lock:
            member = self.member_by_ref(external_ref)
            if member is None:
                member = Member(f"M{len(self.members) + 1:06d}", external_ref)
                self.members[member.member_id] = member
            member.points += points
            return member

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.members.clear()
            self.point_entries.clear()
            self._idempotent.clear()
            self.wallet.clear()

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

    def _once(self, handler):
        """Applied once per Idempotency-Key: a repeat with the same body gets the first answer (a 2xx or
        a refusal), another body under the same key is refused; a 5xx (a fault) is not remembered."""
        def wrapped(req: Request, body: dict[str, Any]) -> Response:
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
                answer = handler(req, body)
                if answer.status < 500:
                    self._idempotent[key] = (fingerprint, answer)
                return answer
        return wrapped

    def _coupon(self, req: Request, body: dict[str, Any]) -> Response:
        return self.wallet.coupon(req.path, body)

    def _member_post(self, req: Request, body: dict[str, Any]) -> Response:
        m = re.fullmatch(r"/v1/members/([^/]+)/points(/holds(?:/([^/]+)/(use|release))?|/deduct)?", req.path)
        if not m:
            return _error(404, "not_found", "no such resource")
        member = self.members.get(m.group(1))
        if member is None:
            return _error(404, "member_not_found", f"no member {m.group(1)}")
        if m.group(2) == "/holds":
            return self.wallet.hold(member, body)
        if m.group(3):
            return self.wallet.settle(member, m.group(3), m.group(4))
        points = body.get("points")
        if not isinstance(points, int) or isinstance(points, bool) or points <= 0 or not body.get("order_no"):
            return _error(422, "validation_error", "points must be a positive integer and order_no given")
        if m.group(2) == "/deduct":
            if points > member.points:
                return _error(409, "points_insufficient", f"the member has {member.points} point(s), not {points}")
            points = -points
        member.points += points
        key = {k.lower(): v for k, v in req.headers.items()}["idempotency-key"]
        entry = {"member_id": member.member_id, "order_no": body["order_no"], "points": points,
                 "reason": body.get("reason"), "idempotency_key": key}
        self.point_entries.append(entry)
        return Response(201, {"entry": entry, "balance": member.points})


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": code, "message": message})


SANDBOX = SandboxSystem("crm", CrmSimulator, 8702, "HUB_CRM_URL",
                        credentials={"HUB_CRM_API_KEY": "sandbox-crm-hmac-secret-0001"})
