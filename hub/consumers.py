"""Idempotent consumers and dead letters, independent of the transport.

A consumer applies an event once: its (consumer, message id) row is written in the same
transaction as its effect, so a redelivered or re-sent event has no second effect.

Two kinds of failure, two answers:
- our own database away (refusing connections, a cut connection, a deadlock): the event is
  fine, so it is waited out with bounded backoff, never counted as an attempt, never parked —
  the broker message stays unacknowledged on its queue meanwhile;
- the work itself failing (an external system refusing, a mapping error): retried a bounded
  number of times with backoff, then parked as a dead letter an operator can list and replay;
  a create whose answer was lost (`ports.OutcomeUnknown`) is not retried, since that could do it
  twice: it is parked at once as `unknown_outcome` and replayed only when the operator says resend.
`handle_once` returns only when the effect or the dead letter is committed, so the caller may
acknowledge the message then, and only then.

A consumer is a row of `hub/handlers.py` (the one table of who handles what): its name (the
once-only records' and the dead letters' key), the event it takes, its function, its filter.
One that calls an external system says `calls_out=True` and opens its own short transactions
(read, commit, call, record): no transaction stays open across the call.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, select, update

from hub import tracing
from hub.logs import log_context
from hub.metrics import METRICS

from .bootstrap import HubContext
from .events import Event
from .ports import OutcomeUnknown
from .storage import raw
from .storage.in_list import ByDialect, in_list
from .storage.outage import is_outage
from .storage.tables import FAILED, UNKNOWN_OUTCOME, DeadLetter, ProcessedMessage, RetryDue, utcnow
from .storage.uow import UnitOfWork, must_get
from .storage.upsert import insert_ignore, insert_ignore_many, rows_affected

log = logging.getLogger(__name__)
T = TypeVar("T")

# function(ctx, uow, event): the same function runs on delivery and on replay.
Handler = Callable[[HubContext, UnitOfWork, Any], None]
# a consumer that calls out: function(ctx, event), opening its own short units of work.
CallingHandler = Callable[[HubContext, Any], None]
# function(ctx, [event, ...]) that calls out for many events at once (same effect as one by one).
BatchHandler = Callable[[HubContext, list[Any]], None]


@dataclass(frozen=True)
class Consumer:
    """One consumer of one event: a row of `hub/handlers.py`."""

    name: str                        # the once-only records' and the dead letters' key; its metrics label
    event: type[Event]               # what `run` receives, parsed from the envelope's `data`
    run: Handler | CallingHandler
    service: str                     # the worker that runs it (`workers/<service>.py`)
    calls_out: bool = False          # run(ctx, event) in its own short transactions, not run(ctx, uow, event)
    fulfillment: frozenset[str] = frozenset()   # only these fulfilment types (empty: all)
    to: frozenset[str] = frozenset()            # only these target states (empty: all)
    batch: BatchHandler | None = None           # how it takes many events at once (calls out only)

    def wants(self, data: dict[str, Any]) -> bool:
        """The filter, on the wire `data` (a skipped event is never parsed nor written down)."""
        return (not self.fulfillment or data.get("fulfillment") in self.fulfillment) and \
            (not self.to or data.get("to") in self.to)

    def parse(self, envelope: dict[str, Any]) -> Any:
        return self.event.from_data(envelope.get("data") or {})


def by_name(table: Iterable[Consumer], aliases: Mapping[str, str] | None = None) -> dict[str, Consumer]:
    """Consumers by name, and by the older names `aliases` maps to a name (dead letters parked before)."""
    named = {c.name: c for c in table}
    return {**{old: named[new] for old, new in (aliases or {}).items()}, **named}


# The id of the event a consumer is handling (delivery, retry and replay alike): work a calling-out
# consumer starts that must keep one name across them (a refund's number) is keyed by it.
_MESSAGE_ID: ContextVar[str | None] = ContextVar("hub_consumer_message_id", default=None)


def current_message_id() -> str | None:
    return _MESSAGE_ID.get()


# Waiting out our own outage: first pause, and the longest pause between two tries.
OUTAGE_FIRST_WAIT_S = 0.2
OUTAGE_MAX_WAIT_S = 5.0


@dataclass(frozen=True)
class Outcome:
    status: str          # applied | duplicate | parked | deferred (a retry due later, `retry_due`)
    attempts: int = 1
    error: str = ""


def wait_out_outage(what: str, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `fn` until it does not fail for an outage of our database; other failures are raised."""
    delay = OUTAGE_FIRST_WAIT_S
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("%s: our database or gate is unavailable (%s); trying again in %.1fs", what,
                        type(exc).__name__, delay)
            sleep(delay)
            delay = min(delay * 2, OUTAGE_MAX_WAIT_S)


def _apply_once(ctx: HubContext, consumer: Consumer, envelope: dict[str, Any]) -> bool:
    handler: Any = consumer.run
    key = {"consumer": consumer.name, "message_id": envelope["id"]}
    if consumer.calls_out:
        with ctx.reader() as uow:
            seen = uow.session.execute(select(ProcessedMessage.message_id).filter_by(**key)).first()
        if seen is not None:
            return False
        token = _MESSAGE_ID.set(envelope["id"])
        try:
            handler(ctx, consumer.parse(envelope))      # its own short transactions
        finally:
            _MESSAGE_ID.reset(token)
        with ctx.uow() as uow:
            added = insert_ignore(uow.session, ProcessedMessage, {**key, "processed_at": utcnow()})
            uow.commit()
        return added
    with ctx.uow() as uow:
        if not insert_ignore(uow.session, ProcessedMessage, {**key, "processed_at": utcnow()}):
            return False
        handler(ctx, uow, consumer.parse(envelope))
        uow.commit()
    return True


def handle(ctx: HubContext, consumer: Consumer, envelope: dict[str, Any]) -> Outcome | None:
    """Run `consumer` on an event it wants (once, retried, parked on failure); None if its filter skips it."""
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if isinstance(data, dict) and not consumer.wants(data):
        return None
    return handle_once(ctx, consumer, envelope)


def handle_once(ctx: HubContext, consumer: Consumer, envelope: dict[str, Any], *, attempts: int = 3,
                backoff: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Apply `envelope` with `consumer` exactly once, or park it after `attempts` failures of the work.

    Returns only once the effect or the dead letter is committed; an outage of our database is
    waited out in between, however long it lasts.
    """
    started, name = time.perf_counter(), consumer.name
    with log_context(consumer=name, message_id=envelope.get("id") if isinstance(envelope, dict) else None,
                     order_id=_order_of(envelope)), _consume_span(consumer, [envelope]):
        outcome = _handle_once(ctx, consumer, envelope, attempts, backoff, sleep)
    METRICS.consumer_seconds.labels(name).observe(time.perf_counter() - started)
    METRICS.consumer_messages.labels(name, outcome.status).inc()
    return outcome


def _consume_span(consumer: Consumer, envelopes: list[Any]) -> AbstractContextManager[Any]:
    """A consumer span continuing the first message's trace (the publish's context, from the broker's headers
    or the outbox envelope), linked to every message's; off: the shared no-op."""
    if not tracing.enabled():
        return tracing.OFF
    contexts = [e.get(tracing.HEADER) if isinstance(e, dict) else None for e in envelopes]
    name = f"consume {consumer.name}" + (" batch" if len(envelopes) > 1 else "")
    return tracing.span(name, tracing.CONSUMER, parent=next((c for c in contexts if c), None),
                        links=contexts if len(envelopes) > 1 else (),
                        attributes={"messaging.destination.name": consumer.event.TYPE, "hub.consumer": consumer.name,
                                    "messaging.batch.message_count": len(envelopes)})


def _order_of(envelope: Any) -> str | None:
    data = envelope.get("data") if isinstance(envelope, dict) else None
    return data.get("order_id") if isinstance(data, dict) else None


def _handle_once(ctx: HubContext, consumer: Consumer, envelope: Any, attempts: int, backoff: float,
                 sleep: Callable[[float], None]) -> Outcome:
    name = consumer.name
    if not isinstance(envelope, dict) or "id" not in envelope:
        payload = envelope if isinstance(envelope, dict) else {"raw": repr(envelope)}
        wait_out_outage(f"parking a malformed event for {name}",
                        lambda: park(ctx, name, payload, "malformed event: no id", 1), sleep)
        return Outcome("parked", 1, "malformed event")
    error, attempt, delay = "", 0, OUTAGE_FIRST_WAIT_S
    while attempt < attempts:
        try:
            return Outcome("applied" if _apply_once(ctx, consumer, envelope) else "duplicate", attempt + 1)
        except Exception as exc:
            if is_outage(exc):        # not the event's fault: wait, and do not count it
                log.warning("consumer %s: our database or gate is unavailable (%s); %s waits %.1fs on its queue", name,
                            type(exc).__name__, envelope["id"], delay)
                sleep(delay)
                delay = min(delay * 2, OUTAGE_MAX_WAIT_S)
                continue
            if isinstance(exc, OutcomeUnknown):   # retrying could do it twice: an operator decides
                error = f"{type(exc).__name__}: {exc}"
                log.error("consumer %s: %s has an unknown outcome, parked at once: %s", name, envelope["id"], error)
                wait_out_outage(f"parking {envelope['id']} for {name}",
                                partial(park, ctx, name, envelope, error, attempt + 1, kind=UNKNOWN_OUTCOME), sleep)
                return Outcome("parked", attempt + 1, error)
            attempt += 1
            error = f"{type(exc).__name__}: {exc}"
            METRICS.consumer_failures.labels(name).inc()
            wait_up_to = getattr(exc, "wait_up_to", None)
            if wait_up_to:     # the system said how long this lasts: tried again later, no worker waits
                log.warning("consumer %s: %s is to be tried again later (up to %.0fs): %s", name, envelope["id"],
                            wait_up_to, error)
                return wait_out_outage(f"deferring {envelope['id']} for {name}",
                                       partial(_defer, ctx, name, envelope, error, wait_up_to), sleep)
            log.warning("consumer %s failed on %s (attempt %d/%d): %s", name, envelope["id"], attempt, attempts,
                        error)
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    wait_out_outage(f"parking {envelope['id']} for {name}", lambda: park(ctx, name, envelope, error, attempts),
                    sleep)
    return Outcome("parked", attempts, error)


def handle_batch(ctx: HubContext, consumer: Consumer, envelopes: list[dict[str, Any]]) -> list[Outcome]:
    """Handle many events of a calling-out consumer at once: the unseen ones go to its batch handler
    (which opens its own short transactions around its calls), then all are marked processed together.

    If anything fails — the work or our database — each event goes through `handle_once` on its own
    (outages waited out, the work retried, then parked), so on return every event's effect or dead
    letter is committed and the messages may be acknowledged.
    """
    batch = consumer.batch
    good = [e for e in envelopes if isinstance(e, dict) and "id" in e]
    if batch is None or not consumer.calls_out or len(good) < 2 or len(good) < len(envelopes):
        return [handle_once(ctx, consumer, e) for e in envelopes]
    with _consume_span(consumer, good):
        return _handle_batch(ctx, consumer, batch, envelopes, good)


# Which of a batch's messages this consumer has processed: built once per dialect, run without an ORM session.
_SEEN = ByDialect(lambda d: select(ProcessedMessage.__table__.c.message_id).where(
    ProcessedMessage.__table__.c.consumer == bindparam("consumer"),
    in_list(ProcessedMessage.__table__.c.message_id, "ids", d)))


def _handle_batch(ctx: HubContext, consumer: Consumer, batch: BatchHandler, envelopes: list[dict[str, Any]],
                  good: list[dict[str, Any]]) -> list[Outcome]:
    name = consumer.name
    ids = list(dict.fromkeys(e["id"] for e in good))
    try:
        with ctx.reader() as uow:
            conn = uow.connection
            seen = set(raw.execute(conn, _SEEN.on(conn), {"consumer": name, "ids": ids}).scalars())
        fresh = {e["id"]: e for e in good if e["id"] not in seen}
        if fresh:
            batch(ctx, [consumer.parse(e) for e in fresh.values()])
            with ctx.uow() as uow:
                now = utcnow()
                insert_ignore_many(uow.connection, ProcessedMessage, [
                    {"consumer": name, "message_id": message_id, "processed_at": now} for message_id in fresh])
                uow.commit()
    except Exception as exc:  # one by one: outages waited out, retries, a dead letter for the one that fails
        log.warning("consumer %s failed on a batch of %d, handling them one by one: %s", name, len(good), exc)
        return [handle_once(ctx, consumer, e) for e in envelopes]
    METRICS.consumer_messages.labels(name, "applied").inc(len(fresh))
    outcomes = []
    for e in envelopes:
        applied = fresh.pop(e["id"], None) is not None       # a second copy in the batch is a duplicate
        outcomes.append(Outcome("applied" if applied else "duplicate"))
    return outcomes


# How soon a deferred event is tried again (the scheduler's timer looks every few seconds), and how long
# another replica's try of it is left alone before it counts as lost.
RETRY_LATER_STEP_S = 10.0
RETRY_LEASE_S = 120.0


def _defer(ctx: HubContext, name: str, envelope: dict[str, Any], error: str, wait_up_to: float,
           now: datetime | None = None) -> Outcome:
    """Keep the event for a retry due in a few seconds; once its deadline (`wait_up_to` after it first
    failed so) has passed, park it as a dead letter instead (parked first, then forgotten here: a crash
    in between leaves one more try, never a lost event)."""
    now = now or utcnow()
    key = {"consumer": name, "message_id": envelope["id"]}
    with ctx.uow() as uow:
        row = uow.session.get(RetryDue, key)
        if row is None:
            row = RetryDue(**key, payload=envelope, error=error[:4000], attempts=0, first_failed_at=now,
                           due_at=now, give_up_at=now + timedelta(seconds=wait_up_to))
            uow.session.add(row)
        row.attempts, row.error = row.attempts + 1, error[:4000]
        attempts, expired = row.attempts, now >= row.give_up_at
        if not expired:
            row.due_at = min(now + timedelta(seconds=RETRY_LATER_STEP_S), row.give_up_at)
        uow.commit()
    if not expired:
        METRICS.consumer_messages.labels(name, "deferred").inc()
        return Outcome("deferred", attempts, error)
    park(ctx, name, envelope, error, attempts)
    _forget_retry(ctx, name, envelope["id"])
    return Outcome("parked", attempts, error)


def _forget_retry(ctx: HubContext, name: str, message_id: str) -> None:
    with ctx.uow() as uow:
        uow.session.execute(delete(RetryDue).where(RetryDue.consumer == name, RetryDue.message_id == message_id))
        uow.commit()


def retry_due(ctx: HubContext, known: Mapping[str, Consumer], now: datetime | None = None,
              limit: int = 100) -> list[Outcome]:
    """Try again the deferred events that are due (the scheduler's timer): done, deferred once more,
    or parked past their deadline. Each is claimed first (its due time moved on by a lease), so two
    replicas do not run one event at once; an outage of our database leaves it due for the next look."""
    now = now or utcnow()
    with ctx.reader() as uow:
        due = list(uow.session.execute(select(RetryDue.consumer, RetryDue.message_id, RetryDue.due_at)
                                       .where(RetryDue.due_at <= now).order_by(RetryDue.due_at).limit(limit)))
    outcomes = []
    for name, message_id, due_at in due:
        with ctx.uow() as uow:
            claimed = rows_affected(uow.session.execute(
                update(RetryDue).where(RetryDue.consumer == name, RetryDue.message_id == message_id,
                                       RetryDue.due_at == due_at)
                .values(due_at=now + timedelta(seconds=RETRY_LEASE_S)))) == 1
            row = uow.session.get(RetryDue, {"consumer": name, "message_id": message_id}) if claimed else None
            payload = dict(row.payload) if row is not None else None
            uow.commit()
        if payload is None:
            continue
        outcomes.append(_retry_one(ctx, known, name, payload, now))
    return outcomes


def _retry_one(ctx: HubContext, known: Mapping[str, Consumer], name: str, payload: dict[str, Any],
               now: datetime) -> Outcome:
    consumer = known.get(name)
    try:
        if consumer is None:
            raise KeyError(f"no consumer {name!r} in hub/handlers.py")
        with log_context(consumer=name, message_id=payload.get("id"), order_id=_order_of(payload)):
            applied = _apply_once(ctx, consumer, payload)
    except Exception as exc:
        if is_outage(exc):     # ours: the claim's lease runs out and the timer tries it again
            log.warning("retry of %s for %s: our database is unavailable (%s)", payload["id"], name, exc)
            return Outcome("deferred")
        error = f"{type(exc).__name__}: {exc}"
        METRICS.consumer_failures.labels(name).inc()
        wait_up_to = getattr(exc, "wait_up_to", None)
        if wait_up_to:
            return _defer(ctx, name, payload, error, wait_up_to, now)
        kind = UNKNOWN_OUTCOME if isinstance(exc, OutcomeUnknown) else FAILED
        park(ctx, name, payload, error, 1, kind=kind)
        _forget_retry(ctx, name, payload["id"])
        return Outcome("parked", 1, error)
    _forget_retry(ctx, name, payload["id"])
    METRICS.consumer_messages.labels(name, "applied" if applied else "duplicate").inc()
    return Outcome("applied" if applied else "duplicate")


def park(ctx: HubContext, target: str, payload: dict[str, Any], error: str, attempts: int,
         kind: str = FAILED) -> int:
    """Keep failed work for an operator: payload, target, error, attempts, first and last failure,
    and its kind (failed, or unknown_outcome: replay only when the operator says resend)."""
    now = utcnow()
    with ctx.uow() as uow:
        message_id = payload.get("id") if isinstance(payload, dict) else None
        row = None
        if message_id:
            row = uow.session.execute(select(DeadLetter).where(
                DeadLetter.target == target, DeadLetter.message_id == message_id,
                DeadLetter.status == "parked")).scalar_one_or_none()
        if row is None:
            row = DeadLetter(target=target, message_id=message_id, payload=payload, error=error[:4000],
                             attempts=attempts, first_failed_at=now, last_failed_at=now, status="parked", kind=kind)
            uow.session.add(row)
        else:
            row.attempts += attempts
            row.error, row.last_failed_at, row.kind = error[:4000], now, kind
        uow.commit()
        METRICS.dead_letters_parked.labels(target).inc()
        log.error("parked dead letter %s for %s: %s", row.id, target, error)
        return row.id


class ResendNotConfirmed(Exception):
    """Replaying this letter may do its work twice: the operator must check and say resend."""

    def __init__(self, dead_letter_id: int, error: str):
        self.dead_letter_id = dead_letter_id
        super().__init__(f"dead letter {dead_letter_id} has an unknown outcome ({error[:200]}); check the "
                         f"other system first, then replay it with resend to send it again")


def dead_letters(ctx: HubContext, status: str = "parked") -> list[DeadLetter]:
    with ctx.reader() as uow:
        stmt = select(DeadLetter).where(DeadLetter.status == status).order_by(DeadLetter.id)
        rows = list(uow.session.execute(stmt).scalars())
        uow.session.expunge_all()       # plain records for the caller, not tied to this session
        return rows


def replay(ctx: HubContext, dead_letter_id: int, known: Mapping[str, Consumer], *, resend: bool = False) -> bool:
    """Run a parked event through its consumer again (looked up by the letter's target in `known`,
    `handlers.BY_NAME` for the hub's own). Success removes it; failure keeps it.
    A letter of unknown outcome (the ERP may already hold it) runs only with `resend=True`."""
    with ctx.uow() as uow:
        row = uow.session.get(DeadLetter, dead_letter_id)
        if row is None or row.status != "parked":
            return False
        if row.kind == UNKNOWN_OUTCOME and not resend:
            raise ResendNotConfirmed(dead_letter_id, row.error)
        target, payload = row.target, row.payload
    if target not in known:
        raise KeyError(f"no consumer {target!r} in hub/handlers.py")
    try:
        with log_context(consumer=known[target].name, message_id=payload.get("id"), order_id=_order_of(payload)), \
                tracing.span(f"replay {known[target].name}", tracing.CONSUMER, parent=payload.get(tracing.HEADER)):
            _apply_once(ctx, known[target], payload)
    except Exception as exc:
        with ctx.uow() as uow:
            row = must_get(uow.session, DeadLetter, dead_letter_id)
            row.attempts += 1
            row.error, row.last_failed_at = f"{type(exc).__name__}: {exc}"[:4000], utcnow()
            if isinstance(exc, OutcomeUnknown):      # now maybe done: the next replay must ask first too
                row.kind = UNKNOWN_OUTCOME
            uow.commit()
        METRICS.dead_letters_replayed.labels("failed").inc()
        return False
    with ctx.uow() as uow:
        uow.session.delete(must_get(uow.session, DeadLetter, dead_letter_id))
        uow.commit()
    METRICS.dead_letters_replayed.labels("ok").inc()
    return True
