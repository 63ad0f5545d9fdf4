"""Each channel's order pull: the orders it changed since its cursor, taken as a push takes them.

A channel retries a push only so often (the WeChat shop about 10 times over 3.6 hours); an order whose
pushes all failed — our outage, a network split — is otherwise never learned. So on the scheduler's timer
(and at once when the scheduler starts, after an outage of ours) each channel is asked for the orders it
changed in [cursor − overlap, now), page by page and window by window (`changed_orders`, no transaction
open), each order read with `get_order` and applied by `services/shop_orders.sync` — the use case the push
callback calls — so a pulled order pushed late, or pushed then pulled, is one order. The cursor
(`channel_order_pulls`) moves to a window's end only once every order listed in it is committed; the
overlap asks again a little before it, as the channel's clock may lag ours. An order the pull placed or
moved is one the pushes never delivered: counted per channel (`hub_channel_orders_missed`, and the row's
`missed`, which the console shows).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from hub.bootstrap import HubContext
from hub.domain.errors import HubError
from hub.metrics import METRICS
from hub.ports import ChannelStockPublisher, MappingError, PermanentError
from hub.services import orders, shop_orders
from hub.storage.tables import ChannelOrderPull, utcnow
from hub.storage.uow import UnitOfWork

log = logging.getLogger(__name__)
FIRST_LOOKBACK = timedelta(days=1)       # a channel pulled for the first time: its last day
MAX_PAGES = 1000                          # per window: a channel that pages forever stops here


@dataclass(frozen=True)
class PullResult:
    system: str
    channel: str
    listed: int          # order ids the channel listed (an id in two windows counts twice)
    missed: int          # orders the pull placed or moved: the pushes never delivered those changes
    refused: int         # orders the hub cannot take (unknown SKU, no store): logged, as a push's 4xx would be
    cursor_at: datetime


def pull_channel_orders(ctx: HubContext, now: datetime | None = None) -> list[PullResult]:
    """Pull every channel that takes orders (`publish_to`); one channel failing stops no other."""
    results = []
    for channel in ctx.config.channels:
        if not channel.publish_to:
            continue
        try:
            results.append(pull_channel(ctx, channel.id, channel.publish_to, now))
        except Exception as exc:  # noqa: BLE001 - the channel or our database away: the next run asks again
            METRICS.channel_order_pulls.labels(channel.id, "failed").inc()
            log.warning("order pull of %s (%s) failed; its cursor stays: %s", channel.id, channel.publish_to, exc)
            _note_error(ctx, channel.publish_to, f"{type(exc).__name__}: {exc}")
    return results


def pull_channel(ctx: HubContext, channel_id: str, system: str, now: datetime | None = None) -> PullResult:
    now = now or utcnow()
    connector: ChannelStockPublisher = ctx.connectors.channel(system)
    with ctx.uow() as uow:
        cursor = _state(uow, system, channel_id, now).cursor_at
        uow.commit()
    stores = tuple(store.id for store in ctx.config.stores)
    step = timedelta(seconds=max(int(connector.pull_window_s), 60))
    since = cursor - timedelta(seconds=ctx.config.hub.order_pull_overlap_s)
    listed = missed = refused = 0
    while since < now:                   # window by window: an outage longer than the channel's window is caught up
        until = min(since + step, now)
        ids = _list(connector, since, until, stores)
        window_missed = 0
        for external_id in dict.fromkeys(ids):       # an id on two pages is taken once
            try:
                window_missed += take(ctx, connector, system, external_id, now)
            except (PermanentError, MappingError, HubError) as exc:
                # The hub will never take it (what a push would be answered 4xx for): logged, not waited on.
                refused += 1
                log.warning("order pull of %s: order %s refused: %s", channel_id, external_id, exc)
        with ctx.uow() as uow:            # every order of [since, until) is committed: the cursor may pass it
            row = _state(uow, system, channel_id, now)
            row.cursor_at = max(row.cursor_at, until)
            row.listed += len(ids)
            row.missed += window_missed
            row.last_pull_at, row.last_error = now, None
            if window_missed:
                row.last_missed_at = now
            cursor = row.cursor_at
            uow.commit()
        if window_missed:                 # counted as committed: a later window failing takes nothing back
            METRICS.channel_orders_missed.labels(channel_id).inc(window_missed)
        listed, missed = listed + len(ids), missed + window_missed
        since = until
    METRICS.channel_order_pulls.labels(channel_id, "ok").inc()
    if missed:
        log.warning("order pull of %s took %d order change(s) its pushes never delivered", channel_id, missed)
    return PullResult(system, channel_id, listed, missed, refused, cursor)


class HandledElsewhere(HubError):
    """An order the hub never knew that the channel already shows shipped or done: it was served outside the hub
    (before the hub took the channel's orders, or by hand); placing it now would send its goods a second time."""


GONE_ON = frozenset({"shipped", "completed"})


def take(ctx: HubContext, connector: ChannelStockPublisher, system: str, external_id: str, now: datetime) -> bool:
    """The order as the channel holds it now, applied as its push would be; True when that changed the hub."""
    shop_order = connector.get_order(external_id)            # no transaction open
    for attempt in (1, 2):
        try:
            with ctx.uow() as uow:
                if shop_order.status in GONE_ON and orders.find_by_idempotency(
                        uow, shop_order.channel, shop_order.idempotency_key) is None:
                    raise HandledElsewhere(f"{shop_order.status} in {system} but never in the hub")
                changed = shop_orders.sync(uow, ctx.config, system, shop_order, now)
                uow.commit()
                return changed
        except IntegrityError:
            if attempt == 2:
                raise
            # Its push placed it meanwhile (the unique idempotency key refused ours): read it again.
    raise AssertionError("unreachable")


def _list(connector: ChannelStockPublisher, since: datetime, until: datetime, stores: tuple[str, ...]) -> list[str]:
    ids: list[str] = []
    page = ""
    for _ in range(MAX_PAGES):
        answer = connector.changed_orders(since, until, stores, page)
        ids += answer.order_ids
        if not answer.next_page:
            return ids
        page = answer.next_page
    raise RuntimeError(f"{connector.name}: more than {MAX_PAGES} pages of orders in one window")


def _state(uow: UnitOfWork, system: str, channel_id: str, now: datetime) -> ChannelOrderPull:
    row = uow.session.get(ChannelOrderPull, system)
    if row is None:
        row = ChannelOrderPull(system=system, channel=channel_id, cursor_at=now - FIRST_LOOKBACK,
                               listed=0, missed=0)
        uow.session.add(row)
        uow.session.flush()
    return row


def _note_error(ctx: HubContext, system: str, error: str) -> None:
    try:
        with ctx.uow() as uow:
            row = uow.session.get(ChannelOrderPull, system)
            if row is not None:
                row.last_error = error[:500]
                uow.commit()
    except Exception as exc:  # noqa: BLE001 - our database away too: the log has it
        log.warning("order pull: could not record the error of %s: %s", system, exc)

