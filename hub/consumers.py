"""Idempotent consumers and dead letters, independent of the transport.

A consumer applies an event once: its (consumer, message id) row is written in the same
transaction as its effect, so a redelivered or re-sent event has no second effect. A
consumer that keeps failing is retried a bounded number of times with backoff, then the
event is parked as a dead letter that an operator can list and replay. Nothing is dropped.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .bootstrap import HubContext
from .storage.tables import DeadLetter, ProcessedMessage, utcnow
from .storage.uow import UnitOfWork
from .storage.upsert import insert_ignore

log = logging.getLogger(__name__)

# consumer name -> function(ctx, uow, data); the same function runs on delivery and on replay.
Handler = Callable[[HubContext, UnitOfWork, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def consumer(name: str) -> Callable[[Handler], Handler]:
    """Register a consumer under a stable name (the dead letters' `target`)."""
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


@dataclass(frozen=True)
class Outcome:
    status: str          # applied | duplicate | parked
    attempts: int = 1
    error: str = ""


def _apply_once(ctx: HubContext, name: str, envelope: dict[str, Any], handler: Handler) -> bool:
    with ctx.uow() as uow:
        if not insert_ignore(uow.session, ProcessedMessage, {"consumer": name, "message_id": envelope["id"],
                                                             "processed_at": utcnow()}):
            return False
        handler(ctx, uow, envelope.get("data") or {})
        uow.commit()
    return True


def handle_once(ctx: HubContext, name: str, envelope: dict[str, Any], *, attempts: int = 3,
                backoff: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Apply `envelope` with consumer `name` exactly once, or park it after `attempts` failures."""
    handler = HANDLERS[name]
    if not isinstance(envelope, dict) or "id" not in envelope:
        park(ctx, name, envelope if isinstance(envelope, dict) else {"raw": repr(envelope)},
             "malformed event: no id", 1)
        return Outcome("parked", 1, "malformed event")
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            return Outcome("applied" if _apply_once(ctx, name, envelope, handler) else "duplicate", attempt)
        except Exception as exc:  # any failure: retry, then park; never lose the event
            error = f"{type(exc).__name__}: {exc}"
            log.warning("consumer %s failed on %s (attempt %d/%d): %s", name, envelope["id"], attempt, attempts,
                        error)
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    park(ctx, name, envelope, error, attempts)
    return Outcome("parked", attempts, error)


def park(ctx: HubContext, target: str, payload: dict[str, Any], error: str, attempts: int) -> int:
    """Keep failed work for an operator: payload, target, error, attempts, first and last failure."""
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
                             attempts=attempts, first_failed_at=now, last_failed_at=now, status="parked")
            uow.session.add(row)
        else:
            row.attempts += attempts
            row.error, row.last_failed_at = error[:4000], now
        uow.commit()
        log.error("parked dead letter %s for %s: %s", row.id, target, error)
        return row.id


def dead_letters(ctx: HubContext, status: str = "parked") -> list[DeadLetter]:
    with ctx.reader() as uow:
        stmt = select(DeadLetter).where(DeadLetter.status == status).order_by(DeadLetter.id)
        rows = list(uow.session.execute(stmt).scalars())
        uow.session.expunge_all()       # plain records for the caller, not tied to this session
        return rows


def replay(ctx: HubContext, dead_letter_id: int) -> bool:
    """Run a parked event through its consumer again. Success removes it; failure keeps it."""
    with ctx.uow() as uow:
        row = uow.session.get(DeadLetter, dead_letter_id)
        if row is None or row.status != "parked":
            return False
        target, payload = row.target, row.payload
    handler = HANDLERS.get(target)
    if handler is None:
        raise KeyError(f"no consumer {target!r} is registered in this process")
    try:
        _apply_once(ctx, target, payload, handler)
    except Exception as exc:
        with ctx.uow() as uow:
            row = uow.session.get(DeadLetter, dead_letter_id)
            row.attempts += 1
            row.error, row.last_failed_at = f"{type(exc).__name__}: {exc}"[:4000], utcnow()
            uow.commit()
        return False
    with ctx.uow() as uow:
        uow.session.delete(uow.session.get(DeadLetter, dead_letter_id))
        uow.commit()
    return True
