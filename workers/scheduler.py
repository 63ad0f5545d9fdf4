"""Scheduler: the hub's periodic work as nameko timers, and a flash sale's give-back
(`hub/handlers.py`, service "scheduler")."""
from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass

from nameko.timer import timer

from hub import handlers
from hub.bootstrap import HubContext
from hub.consumers import retry_due
from hub.flows import delivery, escalation, express, order_pull, reconcile, refunds
from hub.services import housekeeping, payment_reconciliation

from .dependencies import HubCore
from .subscribe import subscribed

log = logging.getLogger(__name__)
RECONCILE_TICK_S = 5


@dataclass
class TimerState:
    """What the timers remember of one hub context between ticks (nameko makes a service instance per call)."""

    last_reconcile: float | None = None      # when reconciliation last ran (the first run one interval after start)
    last_order_pull: float | None = None     # when the channels' orders were last pulled
    bills_done: str | None = None            # the last bill day compared


# id(context) -> (a weak reference to that context, its state). The id alone is not the context's: once a
# context is collected a new one may get its id, and it must not inherit the old one's timers — so the entry
# counts only while its reference still points at this very context, and goes when the context does.
_timer_states: dict[int, tuple[weakref.ref[HubContext], TimerState]] = {}


def timer_state(ctx: HubContext) -> TimerState:
    """This context's timer state, a fresh one for a context the scheduler has not seen."""
    key = id(ctx)
    held = _timer_states.get(key)
    if held is not None and held[0]() is ctx:
        return held[1]
    state = TimerState()

    def forget(ref: weakref.ref[HubContext]) -> None:      # the context is gone: its entry too (not a newer one)
        if _timer_states.get(key, (None, None))[0] is ref:
            del _timer_states[key]

    _timer_states[key] = (weakref.ref(ctx, forget), state)
    return state


@subscribed
class SchedulerService:
    name = "scheduler"
    hub = HubCore()

    @timer(interval=15)
    def expire_unpaid_orders(self) -> None:
        expired = housekeeping.expire_unpaid(self.hub)
        if expired:
            log.info("expired %d unpaid order(s): %s", len(expired), ", ".join(expired))

    # Events a system said to try again later (WeChat's payment not yet visible): run when due, parked
    # past their deadline (`hub/consumers.py`); our database away leaves them due for the next tick.
    @timer(interval=5)
    def retry_due_work(self) -> None:
        try:
            done = retry_due(self.hub, handlers.BY_NAME)
        except Exception as exc:
            log.warning("retrying deferred work failed: %s", exc)
            return
        if done:
            log.info("retried %d deferred event(s): %s", len(done), ", ".join(o.status for o in done))

    @timer(interval=600)
    def cancel_uncollected_pickups(self) -> None:
        cancelled = housekeeping.cancel_uncollected(self.hub)
        if cancelled:
            log.info("cancelled %d uncollected pickup order(s)", len(cancelled))
        housekeeping.remove_old_member_holds(self.hub)     # the same slow clean-up tick

    @timer(interval=5)
    def book_due_riders(self) -> None:
        booked = delivery.book_due(self.hub)        # stores that book a delay after payment (延迟发单)
        if booked:
            log.info("booked %d rider(s) due by their store's dispatch delay: %s", len(booked), ", ".join(booked))

    # No rider accepted within a store's `escalation.after_minutes`: a tip, then the next courier, express or an
    # operator (`flows/escalation.py`); each booking's own time decides, so a short tick is enough.
    @timer(interval=30)
    def escalate_deliveries(self) -> None:
        try:
            stepped = escalation.escalate_due(self.hub)
        except Exception as exc:   # our database away: the next tick looks again
            log.warning("delivery escalation failed: %s", exc)
            return
        if stepped:
            log.info("escalated %d delivery booking(s) no rider accepted: %s", len(stepped), ", ".join(stepped))

    @timer(interval=300)
    def follow_up_refunds(self) -> None:
        settled = refunds.follow_up(self.hub)      # refunds whose notification never came
        if settled:
            log.info("followed up %d refund(s) with the payment platform: %s", len(settled), ", ".join(settled))

    @timer(interval=600)
    def poll_stopped_express_tracking(self) -> None:
        applied = express.poll_stopped_tracking(self.hub)     # waybills the courier stopped pushing
        if applied:
            log.info("polled express tracking the courier no longer pushes: %d report(s) applied", applied)

    # nameko fixes a timer's interval when the class is defined; config.yaml's
    # hub.reconcile_interval_s is honoured by a short tick that runs when the interval is up.
    @timer(interval=RECONCILE_TICK_S)
    def reconcile_channel_stock(self) -> None:
        now, state = time.monotonic(), timer_state(self.hub)
        if state.last_reconcile is None:
            state.last_reconcile = now                               # the first run one interval after start
        if now - state.last_reconcile < self.hub.config.hub.reconcile_interval_s:
            return
        state.last_reconcile = now
        try:
            reconcile.reconcile_channel_stock(self.hub)     # logs and counts what it repaired
        except Exception as exc:   # a channel (or our database) away: the next run checks again
            log.warning("channel stock reconciliation failed: %s", exc)

    # Each channel's orders changed since its cursor, so an order whose pushes were all lost is still taken.
    # The first tick pulls at once: a scheduler starting is often our own outage ending.
    @timer(interval=RECONCILE_TICK_S)
    def pull_channel_orders(self) -> None:
        now, state = time.monotonic(), timer_state(self.hub)
        last = state.last_order_pull
        if last is not None and now - last < self.hub.config.hub.order_pull_interval_s:
            return
        state.last_order_pull = now
        for r in order_pull.pull_channel_orders(self.hub):    # a channel that failed is logged there
            if r.missed or r.refused:
                log.info("order pull of %s: %d listed, %d its pushes missed, %d refused", r.channel, r.listed,
                         r.missed, r.refused)

    # WeChat Pay publishes yesterday's bills from 10:00 Beijing time; the hourly check compares them once a day
    # after that (a run that found no usable bill is tried again the next hour).
    @timer(interval=3600)
    def reconcile_payments(self) -> None:
        now = payment_reconciliation.utcnow()
        day = payment_reconciliation.yesterday(now)
        state = timer_state(self.hub)
        if now.astimezone(payment_reconciliation.PLATFORM_TZ).hour < 10 or state.bills_done == str(day):
            return
        try:
            runs = payment_reconciliation.reconcile(self.hub, day, trigger="daily")
        except Exception as exc:   # our database away: the next hour tries again
            log.warning("payment reconciliation of %s failed: %s", day, exc)
            return
        if all(r.status == "ok" for r in runs):
            state.bills_done = str(day)
        for r in runs:
            log.info("payment reconciliation %s %s: %s, %d difference(s), %d repaired", r.system, r.bill_date,
                     r.status, r.differences, r.repaired)
