"""Coupons and points through the CRM, keyed so that retries and redeliveries never spend twice.

At order (`hold`, called by the API before the order's transaction, none open during the calls): the
buyer's coupon locked and points held at the CRM, each refusal answered before any stock is reserved.
Then consumers of typed events (`hub/handlers.py`), each calling out with no transaction open:
paid → used (`crm_redeem`); cancelled unpaid or expired → given back (`crm_give_back`; a paid cancel gives
the coupon back, its points come back with its refund); an order never placed → what was held released
(`crm_release_holds`, on `member.holds_release_due`); a refund or return → the points used given back and
the points earned taken back in proportion to the money (`crm_refund_points`, on `order.refunded`: the
money went back, whoever paid it). Every taking or spending call
carries an Idempotency-Key made of the attempt's order_no (`services/member_holds.py`: each attempt of a request
holds under its own), the hold's id or the refund's number; the CRM answers a repeat with its first answer. A
give-back is checked by the CRM's state and sent under a fresh key. A CRM that is down raises TransientError
with a wait (`wait_up_to`): the consumer is retried due by the scheduler until then, and only then parked.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from hub import events
from hub.bootstrap import HubContext
from hub.domain import points as earned_points
from hub.domain.discounts import FEN_PER_POINT, Discount, DiscountKind, step_share
from hub.domain.errors import BadInput, MemberRefused
from hub.domain.model import Buyer, PlaceOrder
from hub.domain.refunds import RefundStatus
from hub.ports import Crm, CrmRefused
from hub.services import member_holds, money_owed, orders
from hub.storage.tables import OrderRow

log = logging.getLogger(__name__)

# The CRM's refusals that are the buyer's bad input (422); any other refusal is a 409 with its reason.
BAD_INPUT = frozenset({"coupon_not_owned", "coupon_not_found", "points_insufficient", "validation_error"})


def order_key(channel: str, idempotency_key: str) -> str:
    """The CRM's order_no for a hold: known before the order exists, the same for a retried request."""
    return "K" + hashlib.sha256(f"{channel}\n{idempotency_key}".encode()).hexdigest()[:31]


@dataclass(frozen=True)
class Held:
    """What one attempt of an order request asked the CRM for, under its own order_no: the coupon (to
    unlock, a no-op if it was never locked for that order_no), and the points (by the hold's id, or found
    again by the attempt's idempotency key when the answer was lost)."""

    member_id: str
    coupon_code: str | None
    hold_id: str | None
    order_no: str = ""
    points: int = 0


# A give-back the CRM says needs nothing (never locked for this order_no, already given back) is done.
UNLOCKED = ("coupon_available", "coupon_not_locked_for_order", "coupon_not_found")


def _ref(member_id: str, item: str) -> str:
    return f"{member_id}/{item}"


def _unref(ref: str) -> tuple[str, str]:
    member_id, _, item = ref.partition("/")
    return member_id, item


def _claim(ctx: HubContext, crm: Crm, key: str, member: str, cmd: PlaceOrder) -> member_holds.Attempt | None:
    """This request's attempt, after giving back an earlier attempt's holds (its give-back is in the outbox
    too: a CRM still down answers 502 here and the consumer finishes it); None if the order exists."""
    for _ in range(3):                 # more only when other requests with this key keep coming at once
        with ctx.uow() as uow:
            step, attempt = member_holds.claim(uow, key, member, cmd.coupon_code or None, cmd.points)
            uow.commit()
        if step == "placed" or attempt is None:
            return None
        if step == "hold":
            return attempt
        _give_back(ctx, crm, Held(attempt.member_id, attempt.coupon_code, None, attempt.order_no,
                                  attempt.points if attempt.points_asked else 0))
    raise MemberRefused("other requests with this Idempotency-Key are holding its coupon and points; send it again")


def hold(ctx: HubContext, cmd: PlaceOrder) -> tuple[PlaceOrder, Held | None]:
    """Lock the coupon and hold the points the order names; the command with what the CRM granted and
    the attempt's order_no (the order adopts that attempt's holds). BadInput (422) or MemberRefused (409)
    with the CRM's reason, after giving back what was taken."""
    if not cmd.coupon_code and not cmd.points:
        return cmd, None
    if not ctx.connectors.has("crm"):
        raise BadInput("coupons and points need a CRM, and none is configured")
    lines_fen = sum(x.qty * x.unit_price_fen for x in cmd.lines)
    if cmd.points * FEN_PER_POINT > lines_fen:        # known without the CRM: refused before anything is held
        raise BadInput(f"points: {cmd.points} point(s) take {cmd.points * FEN_PER_POINT} fen off, more than the "
                       f"lines' value ({lines_fen} fen)")
    with ctx.reader() as uow:          # placed already (its attempt's row perhaps removed since): answered again
        if orders.find_by_idempotency(uow, cmd.channel, cmd.idempotency_key) is not None:
            return cmd, None
    crm, key = ctx.connectors.crm(), order_key(cmd.channel, cmd.idempotency_key)
    member = crm.upsert_member(cmd.buyer)
    attempt = _claim(ctx, crm, key, member, cmd)
    if attempt is None:
        return cmd, None                               # placed already: the order is answered again
    number = attempt.order_no
    held = Held(member, cmd.coupon_code or None, None, number, 0)
    granted: list[Discount] = []
    try:
        if cmd.coupon_code:
            value = crm.coupon("lock", cmd.coupon_code, member, number)
            granted.append(Discount(DiscountKind.COUPON, value, _ref(member, cmd.coupon_code)))
        if cmd.points:
            if not attempt.points_asked:
                with ctx.uow() as uow:
                    member_holds.points_asked(uow, attempt)
                    uow.commit()
            held = replace(held, points=cmd.points)
            hold_id = crm.hold_points(member, cmd.points, number)
            held = replace(held, hold_id=hold_id)
            granted.append(Discount(DiscountKind.POINTS, cmd.points * FEN_PER_POINT, _ref(member, hold_id)))
    except CrmRefused as exc:
        give_back_unplaced(ctx, held)
        field = "coupon" if exc.code.startswith("coupon") else "points"
        if exc.code in BAD_INPUT:
            raise BadInput(f"{field}: {exc.code}: {exc.reason}") from None
        raise MemberRefused(f"{field}: {exc.code}: {exc.reason}") from None
    except Exception:
        release_later(ctx, held)                       # the CRM is away: given back once it answers
        raise
    return replace(cmd, discounts=(*cmd.discounts, *granted), crm_order_no=number), held


def give_back_unplaced(ctx: HubContext, held: Held | None) -> None:
    """What an attempt held for an order that is not placed (refused, no stock): given back now, so the
    answer is true when it is sent; left to `crm_release_holds` if the CRM cannot be reached."""
    if held is None or not (held.coupon_code or held.points):
        return
    try:
        _give_back(ctx, ctx.connectors.crm(), held)
    except Exception as exc:
        log.warning("giving back %s's holds later: %s", held.order_no, exc)
        release_later(ctx, held)


def release_later(ctx: HubContext, held: Held | None) -> None:
    """What was held for an order that was not placed: given back by `crm_release_holds` (outbox)."""
    if held is None or not (held.coupon_code or held.points):
        return
    with ctx.uow() as uow:
        member_holds.releasing(uow, held.order_no, held.member_id, held.coupon_code, held.hold_id, held.points)
        uow.commit()


def _give_back(ctx: HubContext, crm: Crm, held: Held) -> None:
    """Unlock and release what the attempt holding under `held.order_no` may hold, then say it is given back.
    Each call is checked by the CRM's state (unlock only what is locked for this order_no, release a hold
    once), so it goes under a fresh Idempotency-Key: a replayed answer of an earlier give-back must not stand
    for this one, when a late lock of the same attempt came in between."""
    if held.coupon_code:
        code = held.coupon_code
        _quiet(lambda: crm.coupon("unlock", code, held.member_id, held.order_no,
                                  key=f"coupon-unlock-{held.order_no}-{uuid.uuid4().hex[:12]}"), *UNLOCKED)
    hold_id = held.hold_id
    if hold_id is None and held.points:
        try:          # the attempt's own hold, replayed by its key (or made now, and released just after)
            hold_id = crm.hold_points(held.member_id, held.points, held.order_no)
        except CrmRefused:
            hold_id = None                             # refused then: nothing was held
    if hold_id:
        found = hold_id
        _quiet(lambda: crm.settle_points("release", held.member_id, found), "hold_released")
    with ctx.uow() as uow:
        member_holds.released(uow, held.order_no)
        uow.commit()


def crm_release_holds(ctx: HubContext, event: events.MemberHoldsReleaseDue) -> None:
    if not ctx.connectors.has("crm"):
        return
    _give_back(ctx, ctx.connectors.crm(), Held(event.member_id, event.coupon_code, event.hold_id,
                                               event.order_key, event.points))


@dataclass(frozen=True)
class _Steps:
    key: str
    coupon: tuple[str, str] | None      # (member, code)
    hold: tuple[str, str] | None        # (member, hold id)
    points_used: int


def _steps(order: OrderRow, number: str) -> _Steps:
    coupon = hold_ = None
    points = 0
    for d in (Discount.from_dict(x) for x in order.discounts or ()):
        if d.kind == DiscountKind.COUPON:
            coupon = _unref(d.ref)
        elif d.kind == DiscountKind.POINTS:
            hold_, points = _unref(d.ref), d.amount_fen // FEN_PER_POINT
    return _Steps(number, coupon, hold_, points)


def crm_order_no(order: OrderRow) -> str:
    """The CRM order_no the order's coupon and points are held under, as the order keeps it (the attempt it
    adopted; an order placed before it was kept: the bare key, migration 0030) — never member_holds' rows,
    which housekeeping removes, so a late replay names what the order was placed with."""
    return order.crm_order_no or order_key(order.channel, order.idempotency_key)


def _read(ctx: HubContext, order_id: str) -> tuple[_Steps, OrderRow]:
    with ctx.reader() as uow:
        order = orders.get(uow, order_id)
        steps = _steps(order, crm_order_no(order))
        uow.session.expunge(order)
        return steps, order


def _redeem(ctx: HubContext, steps: _Steps) -> None:
    crm = ctx.connectors.crm()
    if steps.coupon:
        crm.coupon("use", steps.coupon[1], steps.coupon[0], steps.key)
    if steps.hold:
        crm.settle_points("use", *steps.hold)


def crm_redeem(ctx: HubContext, event: events.OrderStatusChanged) -> None:
    """Paid: the coupon used (核销) and the held points spent."""
    if not ctx.connectors.has("crm"):
        return
    steps, _ = _read(ctx, event.order_id)
    if steps.coupon or steps.hold:
        _redeem(ctx, steps)


def crm_give_back(ctx: HubContext, event: events.OrderStatusChanged) -> None:
    """Cancelled or expired: unpaid, the coupon unlocked and the hold released; paid, the coupon (used first,
    if its redeem has not run yet) returned — the points come back with the refund (`crm_refund_points`)."""
    if not ctx.connectors.has("crm"):
        return
    steps, order = _read(ctx, event.order_id)
    if not (steps.coupon or steps.hold):
        return
    crm = ctx.connectors.crm()
    if order.paid_at is None:
        if steps.coupon:
            member, code = steps.coupon
            _quiet(lambda: crm.coupon("unlock", code, member, steps.key,
                                      key=f"coupon-unlock-{steps.key}-{uuid.uuid4().hex[:12]}"), *UNLOCKED)
        if steps.hold:
            holder, hold_id = steps.hold
            _quiet(lambda: crm.settle_points("release", holder, hold_id), "hold_released")
        return
    _redeem(ctx, steps)
    if steps.coupon:
        crm.coupon("return", steps.coupon[1], steps.coupon[0], steps.key)


def crm_refund_points(ctx: HubContext, event: events.OrderRefunded) -> None:
    """Money back on the order's payment, by whatever path (`order.refunded`: the hub's refund at WeChat Pay,
    one made at the platform by hand, a channel's own refund or after-sale): the points used given back, the
    points earned (a completed order) taken back, each in proportion to the money, cumulatively over the
    order's refunds. Under the refund's number at the CRM, so a redelivery moves nothing twice."""
    if not ctx.connectors.has("crm"):
        return
    with ctx.reader() as uow:
        order = orders.get(uow, event.order_id)
        steps = _steps(order, crm_order_no(order))
        rows = money_owed.of_payment(uow, order.id, order.payment_ref or "")
        owed = money_owed.owed_back(uow, order)
        whole, buyer = order.total_fen, Buyer(**order.buyer)
    at = next((i for i, r in enumerate(rows) if r.refund_no == event.refund_no), None)
    if at is None:
        return                        # a second payment's refund: the order's points are not its business
    mine = rows[at]
    if mine.status != RefundStatus.SUCCESS:
        return        # an `order.refund_due` parked before this event, replayed: its `order.refunded` follows
    before = sum(r.amount_fen for r in rows[:at])
    back = step_share(before, mine.amount_fen, whole, steps.points_used)
    # earned as `crm_points` gave them (on the money kept at completion): a refund after it takes its share
    taken = earned_points.taken_back(whole, owed, at)
    if not (back or taken):
        return
    crm = ctx.connectors.crm()
    if steps.hold:
        crm.settle_points("use", *steps.hold)          # spent first (a replay if paid already redeemed it)
        member = steps.hold[0]
    else:
        member = crm.upsert_member(buyer)
    crm.move_points(member, back, f"back-{mine.refund_no}", "refund_points_used")
    crm.move_points(member, -taken, f"earned-back-{mine.refund_no}", "refund_points_earned")
    log.info("order %s refund %s: %d point(s) back, %d earned taken back", order.id, mine.refund_no, back, taken)


def _quiet(call: Callable[[], object], *done_codes: str) -> None:
    """A give-back the CRM says is already done (an earlier attempt's, the hold's TTL) is done."""
    try:
        call()
    except CrmRefused as exc:
        if exc.code not in done_codes:
            raise
