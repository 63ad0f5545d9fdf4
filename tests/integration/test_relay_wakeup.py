"""The relay is woken by a commit of outbox rows (PostgreSQL: the outbox trigger's NOTIFY; SQLite: the word from
a commit in this process), not by its poll: with the poll set to a minute, an event is published at once."""
from __future__ import annotations

import time

import eventlet

from hub.events import StockChanged
from workers.outbox_wakeup import wakeup_for
from workers.relay import RelayLoop


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def publish(self, batch: list[tuple[str, dict]]) -> None:
        self.sent.extend(batch)

    def close(self) -> None:
        pass


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        eventlet.sleep(0.01)
    return predicate()


def test_an_event_is_published_without_waiting_for_the_poll(ctx):
    publisher = _Publisher()
    loop = RelayLoop(ctx, publisher, wakeup_for(ctx.engine), batch_size=500, gather=0.001, poll=60.0)
    thread = eventlet.spawn(loop.run)
    try:
        eventlet.sleep(0.3)                      # the outbox is empty: the relay is waiting now, for a minute
        for n in range(3):                       # each wake-up, not only the first
            with ctx.uow() as uow:
                uow.emit(StockChanged("TEA-001", "S001", f"test-{n}"))
                uow.commit()
            assert _wait(lambda n=n: len(publisher.sent) == n + 1, 5.0), "not woken by the commit"
            eventlet.sleep(0.2)                  # idle again
        assert [e["data"]["cause"] for _, e in publisher.sent] == ["test-0", "test-1", "test-2"]
    finally:
        loop.stop()
        thread.kill()


def test_a_rolled_back_event_wakes_nothing_and_publishes_nothing(ctx):
    publisher = _Publisher()
    loop = RelayLoop(ctx, publisher, wakeup_for(ctx.engine), batch_size=500, gather=0.001, poll=60.0)
    thread = eventlet.spawn(loop.run)
    try:
        eventlet.sleep(0.3)
        with ctx.uow() as uow:
            uow.emit(StockChanged("TEA-001", "S001", "test"))
        eventlet.sleep(0.5)
        assert publisher.sent == []
    finally:
        loop.stop()
        thread.kill()
