"""Periodic clean-up the scheduler runs: unpaid orders expire, uncollected pickups are
cancelled and their payment asked back. Each order in its own transaction, so one failure stops nothing else.
Member attempts placed or given back are removed once older than `hub.member_holds_keep_days`."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm.exc import StaleDataError

from hub.bootstrap import HubContext
from hub.domain.errors import HubError
from hub.domain.order_states import OrderStatus
from hub.services import inventory, member_holds, orders
from hub.storage.tables import utcnow

log = logging.getLogger(__name__)


def expire_unpaid(ctx: HubContext, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    with ctx.uow() as uow:
        due = orders.due_for_expiry(uow, now)
    done = []
    for order_id in due:
        try:
            with ctx.uow() as uow:
                order = orders.get(uow, order_id, lock=True)
                if order.status != OrderStatus.PENDING_PAYMENT:
                    continue                      # paid meanwhile
                held = (inventory.hold_length(uow.session, order.id)     # read before cancel releases it
                        or orders.reservation_length(ctx.config, order.channel, order.fulfillment_type))
                orders.cancel(uow, order, "hub", f"unpaid after {int(held.total_seconds()) // 60} minutes")
                uow.commit()
                done.append(order_id)
        except (StaleDataError, HubError) as exc:  # a payment won the race: nothing to expire
            log.info("order %s not expired: %s", order_id, exc)
    return done


def cancel_uncollected(ctx: HubContext, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    with ctx.uow() as uow:
        due = orders.due_uncollected(uow, ctx.config, now)
    done = []
    for order_id in due:
        try:
            with ctx.uow() as uow:
                order = orders.get(uow, order_id, lock=True)
                # Cancelled owes the payment back: refunded follows when the platform says the money went.
                orders.cancel(uow, order, "hub",
                              f"not collected within {ctx.config.hub.pickup_uncollected_days} days",
                              cause="not_collected")
                uow.commit()
                done.append(order_id)
        except (StaleDataError, HubError) as exc:
            log.info("order %s not cancelled: %s", order_id, exc)
    return done


def remove_old_member_holds(ctx: HubContext, now: datetime | None = None) -> int:
    """member_holds rows of attempts placed or given back, older than the retention, removed (never one still
    open). A retry of a placed order's request after that is still answered by the order (`members.hold`)."""
    before = (now or utcnow()) - timedelta(days=ctx.config.hub.member_holds_keep_days)
    with ctx.uow() as uow:
        removed = member_holds.remove_settled(uow, before)
        uow.commit()
    if removed:
        log.info("%d member attempt(s) placed or given back before %s removed", removed, before.isoformat())
    return removed
