"""One attempt in a flash sale's rush, as a use case: the gate first, the order database only when admitted.

admit -> (a sale the gate lost is restored from the ledger, then asked again) -> a refusal is answered
-> place the admitted attempt's order from the sale's hold -> give its unit back if placing fails, or if
the key's order is another request's (unless that order holds units of this sale).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.bootstrap import HubContext
from hub.domain.flash_sale import Verdict, refuse_member_benefits
from hub.domain.model import Buyer, Fulfillment, FulfillmentType, OrderLine
from hub.services import flash_sales, orders
from hub.services.orders import IdempotencyConflict
from hub.storage.tables import OrderRow


@dataclass(frozen=True)
class Attempt:
    sale_id: str
    channel: str
    idempotency_key: str
    qty: int
    buyer: Buyer
    coupon_code: str | None = None     # named by the buyer: refused (a flash-sale price takes no coupon)
    points: int = 0                    # named by the buyer: refused likewise


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    view: dict[str, Any] | None = None     # the order as `view` rendered it (None when refused)
    created: bool = False


PLACES = (Verdict.ADMITTED, Verdict.AGAIN)       # every other verdict is a refusal: nothing is placed


def attempt(ctx: HubContext, a: Attempt, now: datetime, view: Callable[[OrderRow], dict[str, Any]],
            counted: Callable[[Verdict], None] = lambda v: None) -> Admission:
    """The gate's verdict and, when admitted (or the same attempt again), the order `view` renders inside
    its transaction. `counted` hears every verdict before anything is placed. A coupon or points named is
    refused first (CouponNotAllowed, PointsNotAllowed: 422), nothing asked of the gate."""
    refuse_member_benefits(a.coupon_code, a.points)
    key = flash_sales.attempt_key(a.channel, a.idempotency_key)
    who, now_ms = flash_sales.buyer_key(a.channel, a.buyer.id), flash_sales.epoch_ms(now)
    verdict = ctx.gate.admit(a.sale_id, key, who, a.qty, now_ms)
    if verdict == Verdict.UNKNOWN:            # a sale the gate lost is learnt again from the ledger, then asked
        flash_sales.restore_gate(ctx, a.sale_id)
        verdict = ctx.gate.admit(a.sale_id, key, who, a.qty, now_ms)
    counted(verdict)
    if verdict not in PLACES:
        return Admission(verdict)
    admitted = verdict == Verdict.ADMITTED
    try:
        out, created = _place(ctx, a, now, view, first_time=admitted)
    except IdempotencyConflict:
        if admitted:        # the key's order is another request's: its unit goes back unless that order holds it
            _settle(ctx, a, key)
        raise
    except BaseException:
        if admitted:        # nothing was committed for this attempt: its unit goes back
            ctx.gate.give_back(a.sale_id, key)
        raise
    if not created and admitted:
        # The gate had forgotten this attempt (its order was cancelled, or refunded, and the unit came back) and
        # admitted it anew, but the answer is the order placed before: the new unit goes back unless that order
        # still holds units of the sale (the same attempt raced itself).
        _settle(ctx, a, key)
    return Admission(verdict, out, created)


def _settle(ctx: HubContext, a: Attempt, key: str) -> None:
    """An admitted attempt that placed no order of its own: the gate keeps its unit only if the ledger says the
    attempt's order holds units of this sale."""
    if not flash_sales.attempt_holds(ctx, a.sale_id, a.channel, a.idempotency_key):
        ctx.gate.give_back(a.sale_id, key)


def _place(ctx: HubContext, a: Attempt, now: datetime, view: Callable[[OrderRow], dict[str, Any]],
           first_time: bool) -> tuple[dict[str, Any], bool]:
    """The admitted attempt's order (its view, and whether it is new), drawn from the sale's hold."""
    for retry in range(2):
        try:
            with ctx.uow() as uow:
                held = flash_sales.for_order(uow, a.sale_id)        # it cannot end while this order is written
                sale, sku = held.sale, held.sku
                price = sale.price_fen if sale.price_fen is not None else sku.price_fen
                cmd = orders.PlaceOrder(
                    channel=a.channel, idempotency_key=a.idempotency_key,
                    lines=(OrderLine(sale.sku, a.qty, price or 0),), buyer=a.buyer,
                    fulfillment=Fulfillment(FulfillmentType.PICKUP, sale.location_id, None), flash_sale_id=a.sale_id)
                # The gate saw this attempt for the first time: no order has its key, so the look-up is
                # skipped; the key's unique constraint still catches a race, and the retry looks.
                placed, created = orders.place(uow, ctx.config, cmd, now=now,
                                               stock=flash_sales.stock_for(sale, held.backing),
                                               detached=sale.stock_held, known_new=first_time and not retry)
                if not created and placed.flash_sale_id != a.sale_id:
                    # The key's order is another sale's (or no sale's): the same key in another sale is another
                    # request, whatever the lines look like (issue 19).
                    raise IdempotencyConflict("this Idempotency-Key was used for an order outside this flash sale")
                out = view(placed) | {"flash_sale_id": a.sale_id}
                uow.commit()
            break
        except IntegrityError:
            if retry:          # the same attempt raced itself; the second look finds the first's order
                raise
    return out, created
