"""Which attempt of an order request holds its coupon and points at the CRM (one row per Idempotency-Key).

An attempt that fails half-way (the CRM down between the coupon's lock and the points' hold) leaves holds
that must be given back, while the client may send the same request again. If the retry held under the same
CRM order_no and the same idempotency keys, the CRM would replay the first attempt's answers and a later
give-back of the first attempt would release what the order now relies on. So each attempt (`generation`)
holds under its own order_no; a new attempt first gives back the one before (`claim` → GIVE_BACK), and the
order adopts only the current attempt's holds (`adopt`, in the order's transaction) — a superseded attempt
cannot place its order and gives its holds back instead. All of it in short transactions, none open across a
CRM call (the callers, `hub/flows/members.py`, call the CRM between them).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, select

from hub import events
from hub.domain.errors import BadInput, MemberRefused
from hub.storage.tables import MemberHold, utcnow
from hub.storage.uow import UnitOfWork
from hub.storage.upsert import insert_ignore

HOLDING, RELEASING, RELEASED, PLACED = "holding", "releasing", "released", "placed"


def order_no(key: str, generation: int) -> str:
    """The CRM's order_no of one attempt; the first keeps the bare key (orders placed before attempts)."""
    return key if generation == 0 else f"{key}.{generation}"


def split(number: str) -> tuple[str, int]:
    key, _, gen = number.partition(".")
    return key, int(gen) if gen.isdigit() else 0


@dataclass(frozen=True)
class Attempt:
    key: str
    generation: int
    member_id: str
    coupon_code: str | None
    points: int
    points_asked: bool

    @property
    def order_no(self) -> str:
        return order_no(self.key, self.generation)


class AttemptConflict(BadInput):
    """The same Idempotency-Key sent again with another coupon, points or buyer (422)."""


def _attempt(row: MemberHold) -> Attempt:
    return Attempt(row.order_key, row.generation, row.member_id, row.coupon_code, row.points, row.points_asked)


def _row(uow: UnitOfWork, key: str) -> MemberHold | None:
    return uow.session.execute(select(MemberHold).where(MemberHold.order_key == key)
                               .with_for_update()).scalar_one_or_none()


def claim(uow: UnitOfWork, key: str, member_id: str, coupon_code: str | None,
          points: int) -> tuple[Literal["hold", "give_back", "placed"], Attempt | None]:
    """The next step of a request: `hold` (a new attempt, to hold under its order_no), `give_back` (the
    attempt before is not given back yet: give it back, `released`, then claim again) or `placed` (the
    order exists: nothing to hold, the order is replayed)."""
    inserted = insert_ignore(uow.session, MemberHold, {
        "order_key": key, "member_id": member_id, "coupon_code": coupon_code, "points": points,
        "generation": 0, "points_asked": not coupon_code and points > 0, "state": HOLDING, "updated_at": utcnow()})
    row = _row(uow, key)
    assert row is not None
    if inserted:
        return "hold", _attempt(row)
    if row.state == PLACED:
        return "placed", None
    if (row.member_id, row.coupon_code, row.points) != (member_id, coupon_code, points):
        raise AttemptConflict("this Idempotency-Key was used for another coupon or points")
    if row.state == RELEASED:
        row.generation, row.state, row.updated_at = row.generation + 1, HOLDING, utcnow()
        row.points_asked = not coupon_code and points > 0       # points first when there is no coupon
        return "hold", _attempt(row)
    # An attempt before this one still holding (failed, crashed, or still running: it can no longer be
    # placed) or being given back: this request gives it back first.
    if row.state == HOLDING:
        _release_due(uow, row)
    row.state, row.updated_at = RELEASING, utcnow()
    return "give_back", _attempt(row)


def _release_due(uow: UnitOfWork, row: MemberHold) -> None:
    """The give-back of the row's attempt, kept in the outbox: done by `crm_release_holds` if nobody does it
    sooner (a points hold, its id not known here, is found by the attempt's own idempotency key)."""
    uow.emit(events.MemberHoldsReleaseDue(_attempt(row).order_no, row.member_id, row.coupon_code, None,
                                          row.points if row.points_asked else 0))


def points_asked(uow: UnitOfWork, attempt: Attempt) -> None:
    """Written before the CRM is asked to hold points: a give-back then knows to look for a hold."""
    row = _row(uow, attempt.key)
    if row is not None and row.generation == attempt.generation:
        row.points_asked = True


def released(uow: UnitOfWork, number: str) -> None:
    """The attempt holding under `number` has given everything back (a later attempt's row is left alone)."""
    key, generation = split(number)
    row = _row(uow, key)
    if row is not None and row.generation == generation and row.state in (HOLDING, RELEASING):
        row.state, row.updated_at = RELEASED, utcnow()


def releasing(uow: UnitOfWork, number: str, member_id: str, coupon_code: str | None, hold_id: str | None,
              points: int) -> None:
    """The attempt holding under `number` failed (or was superseded and cannot be placed): its give-back kept
    in the outbox."""
    uow.emit(events.MemberHoldsReleaseDue(number, member_id, coupon_code, hold_id, points))
    key, generation = split(number)
    row = _row(uow, key)
    if row is not None and row.generation == generation and row.state == HOLDING:
        row.state, row.updated_at = RELEASING, utcnow()


def adopt(uow: UnitOfWork, number: str) -> None:
    """In the order's transaction: the order takes the holds of the attempt holding under `number`, or is
    refused (409) if a retry of the same request took over meanwhile (this attempt's holds are given back)."""
    key, generation = split(number)
    row = _row(uow, key)
    if row is None or row.generation != generation or row.state != HOLDING:
        raise MemberRefused("another attempt of this request (same Idempotency-Key) took over its coupon and "
                            "points; send it again")
    row.state, row.updated_at = PLACED, utcnow()


def adopt_replayed(uow: UnitOfWork, number: str) -> None:
    """An order found by its key that was placed before attempts were kept (holding under the bare key, as the
    first attempt does): the first attempt's holds are that order's, never to be given back by a retry."""
    key, generation = split(number)
    row = _row(uow, key)
    if row is not None and generation == 0 and row.generation == 0 and row.state == HOLDING:
        row.state, row.updated_at = PLACED, utcnow()


def placed_order_no(uow: UnitOfWork, key: str) -> str:
    """The CRM order_no an order's coupon is held under: its placed attempt's, else the bare key."""
    row = uow.session.execute(select(MemberHold).where(MemberHold.order_key == key)).scalar_one_or_none()
    return order_no(key, row.generation) if row is not None and row.state == PLACED else key


def remove_settled(uow: UnitOfWork, before: datetime) -> int:
    """Rows of attempts placed or given back, last changed before `before`, removed; how many. A row still
    holding or being given back is never touched: its give-back needs it."""
    result = uow.session.execute(delete(MemberHold).where(MemberHold.state.in_((PLACED, RELEASED)),
                                                          MemberHold.updated_at < before)
                                 .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
