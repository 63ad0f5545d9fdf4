"""The CRM simulator's coupons and points held for orders (the member API's wallet half).

The shape (see README, "The CRM simulator"): WeChat Pay 商家券-style coupon verbs on a coupon code — lock
(核销前锁定), unlock, use (核销), return (退券) — and Youzan-style points: a hold for an order, then use or
release it, plus increase / decrease entries. Every call names the order (`order_no`) and carries an
Idempotency-Key: a repeat gets the first answer and changes nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .base import Response


@dataclass
class Coupon:
    code: str
    member_id: str
    value_fen: int
    status: str = "available"          # available | locked | used | expired
    order_no: str = ""

    def json(self) -> dict[str, Any]:
        return {"coupon_code": self.code, "member_id": self.member_id, "value_fen": self.value_fen,
                "status": self.status, "order_no": self.order_no}


@dataclass
class Hold:
    hold_id: str
    member_id: str
    points: int
    order_no: str
    status: str = "held"               # held | used | released


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": code, "message": message})


class Wallet:
    """Coupons and point holds; the simulator calls it under its lock, with the member looked up."""

    def __init__(self) -> None:
        self.coupons: dict[str, Coupon] = {}
        self.holds: dict[str, Hold] = {}
        # every change applied, in order: (coupon code | hold id, verb); a replayed or refused call adds none
        self.ledger: list[tuple[str, str]] = []

    def clear(self) -> None:
        self.coupons.clear()
        self.holds.clear()
        self.ledger.clear()

    # POST /v1/coupons/{code}/{lock|unlock|use|return}  {member_id, order_no}
    def coupon(self, path: str, body: dict[str, Any]) -> Response:
        m = re.fullmatch(r"/v1/coupons/([^/]+)/(lock|unlock|use|return)", path)
        if not m:
            return error(404, "not_found", "no such resource")
        coupon, verb, order_no = self.coupons.get(m.group(1)), m.group(2), str(body.get("order_no") or "")
        if not order_no:
            return error(422, "validation_error", "order_no is required")
        if coupon is None:
            return error(404, "coupon_not_found", f"no coupon {m.group(1)}")
        if verb == "lock":
            if coupon.member_id != body.get("member_id"):
                return error(403, "coupon_not_owned", "the coupon belongs to another member")
            if coupon.status != "available":
                return error(409, f"coupon_{coupon.status}", f"the coupon is {coupon.status}")
            coupon.status, coupon.order_no = "locked", order_no
        elif coupon.order_no != order_no:
            return error(409, "coupon_not_locked_for_order", "the coupon is not locked for this order")
        elif verb == "unlock":
            if coupon.status != "locked":
                return error(409, f"coupon_{coupon.status}", f"the coupon is {coupon.status}")
            coupon.status, coupon.order_no = "available", ""
        elif verb == "use":
            if coupon.status != "locked":
                return error(409, f"coupon_{coupon.status}", f"the coupon is {coupon.status}")
            coupon.status = "used"
        else:                                   # return (退券): a used coupon back to its member
            if coupon.status != "used":
                return error(409, f"coupon_{coupon.status}", f"the coupon is {coupon.status}")
            coupon.status, coupon.order_no = "available", ""
        self.ledger.append((coupon.code, verb))
        return Response(200, {"coupon": coupon.json()})

    # POST /v1/members/{id}/points/holds  {points, order_no}
    def hold(self, member: Any, body: dict[str, Any]) -> Response:
        points, order_no = body.get("points"), str(body.get("order_no") or "")
        if not isinstance(points, int) or isinstance(points, bool) or points <= 0 or not order_no:
            return error(422, "validation_error", "points must be a positive integer and order_no given")
        if points > member.points:
            return error(422, "points_insufficient", f"the member has {member.points} point(s), not {points}")
        member.points -= points
        hold = Hold(f"H{len(self.holds) + 1:06d}", member.member_id, points, order_no)
        self.holds[hold.hold_id] = hold
        self.ledger.append((hold.hold_id, "hold"))
        return Response(201, {"hold_id": hold.hold_id, "points": points, "balance": member.points})

    # POST /v1/members/{id}/points/holds/{hold_id}/{use|release}
    def settle(self, member: Any, hold_id: str, verb: str) -> Response:
        hold = self.holds.get(hold_id)
        if hold is None or hold.member_id != member.member_id:
            return error(404, "hold_not_found", f"no hold {hold_id}")
        if hold.status != "held":
            return error(409, f"hold_{hold.status}", f"the hold is {hold.status}")
        hold.status = "used" if verb == "use" else "released"
        self.ledger.append((hold_id, verb))
        if verb == "release":
            member.points += hold.points
        return Response(200, {"hold_id": hold_id, "status": hold.status, "balance": member.points})
