"""A calling-out consumer that takes a batch: many events handled in one go, all marked processed in one
transaction after it; a bad event in the batch parks only itself. (Its calls are idempotent — absolute
figures — so a batch that fails half-way may repeat a call, never an effect in our database.)"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from hub.consumers import Consumer, handle_batch
from hub.events import Probe
from hub.storage.tables import DeadLetter, ProcessedMessage

APPLIED: list[str] = []
BATCHES: list[int] = []


def _one(ctx, data):
    if data.get("bad"):
        raise ValueError("cannot apply this one")
    APPLIED.append(data["n"])


def _many(ctx, events):
    BATCHES.append(len(events))
    for data in events:
        _one(ctx, data)


BATCHED = Consumer("test.batched", Probe, _one, "test", calls_out=True, batch=_many)


def envelope(n: str, **extra) -> dict:
    return {"id": str(uuid.uuid4()), "type": "test", "data": {"n": n, **extra}}


def test_a_batch_is_applied_once_in_one_go(ctx):
    APPLIED.clear(), BATCHES.clear()
    events = [envelope(str(i)) for i in range(5)]
    outcomes = handle_batch(ctx, BATCHED, events + events[:2])   # two redelivered within the batch
    assert [o.status for o in outcomes] == ["applied"] * 5 + ["duplicate"] * 2
    assert BATCHES == [5] and sorted(APPLIED) == ["0", "1", "2", "3", "4"]
    again = handle_batch(ctx, BATCHED, events)
    assert {o.status for o in again} == {"duplicate"} and len(APPLIED) == 5
    with ctx.uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(ProcessedMessage)
                                   .where(ProcessedMessage.consumer == "test.batched")).scalar_one() == 5


def test_a_bad_event_parks_alone_and_the_rest_apply(ctx):
    APPLIED.clear(), BATCHES.clear()
    events = [envelope("a"), envelope("b", bad=True), envelope("c")]
    outcomes = handle_batch(ctx, BATCHED, events)
    assert [o.status for o in outcomes] == ["applied", "parked", "applied"]
    assert APPLIED.count("c") == 1 and "b" not in APPLIED      # the batch never got past b
    with ctx.uow() as uow:
        parked = uow.session.execute(select(DeadLetter.message_id)).scalars().all()
        processed = set(uow.session.execute(select(ProcessedMessage.message_id)
                                            .where(ProcessedMessage.consumer == "test.batched")).scalars())
    assert parked == [events[1]["id"]]
    assert processed == {events[0]["id"], events[2]["id"]}      # the failed batch's marks were rolled back
