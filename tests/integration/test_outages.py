"""Our own database away: the event waits, is never parked for it, and parking itself waits.

Real PostgreSQL, made to refuse connections (tests/faults.py); consumers run in this process.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from hub import consumers
from hub.bootstrap import HubContext
from hub.consumers import Consumer, handle_once
from hub.events import Probe
from hub.storage.db import make_engine
from tests.conftest import PG_URL
from tests.faults import allow_connections

CALLS: dict[str, int] = {}


def cuts_its_own_connection(ctx, uow, data) -> None:
    """Its first three tries lose the database connection under it (as a restart or a cut would)."""
    CALLS["cut"] = CALLS.get("cut", 0) + 1
    if CALLS["cut"] <= 3:
        uow.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


def unmappable(ctx, uow, data) -> None:
    """Fails for a reason of its own every time; on the last try the database stops taking connections."""
    CALLS["unmappable"] = CALLS.get("unmappable", 0) + 1
    if CALLS["unmappable"] == 3:
        from tests.faults import _admin

        engine, name = _admin(PG_URL)
        with engine.connect() as conn:     # new connections refused; this attempt's own stays open
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        engine.dispose()
        timer = threading.Timer(1.5, allow_connections, args=(PG_URL,))
        timer.daemon = True
        timer.start()
    raise ValueError("unit code 'BOX12' has no mapping")


CUTS = Consumer("test.cuts_its_own_connection", Probe, cuts_its_own_connection, "test")
UNMAPPABLE = Consumer("test.unmappable", Probe, unmappable, "test")


@pytest.fixture
def db_comes_back():
    yield
    if PG_URL:
        allow_connections(PG_URL)


def test_a_cut_database_connection_is_waited_out_not_parked(pg_ctx, db_comes_back):
    CALLS.clear()
    outcome = handle_once(pg_ctx, CUTS, {"id": "cut-1", "data": {}},
                          attempts=3, backoff=0.01)
    assert outcome.status == "applied"
    assert CALLS["cut"] == 4
    assert consumers.dead_letters(pg_ctx) == []


def test_parking_during_a_database_outage_waits_and_commits_the_dead_letter(pg_ctx, db_comes_back):
    """nameko acknowledges whatever a handler returns or raises: handle_once may return only once the
    dead letter is committed, even when the database goes away just as the event is to be parked."""
    CALLS.clear()
    # Every unit of work opens a new connection, as a process whose pooled connections were cut would.
    ctx = HubContext(pg_ctx.config, make_engine(PG_URL, poolclass=NullPool))
    try:
        outcome = handle_once(ctx, UNMAPPABLE, {"id": "unmappable-1", "data": {"unit": "BOX12"}},
                              attempts=3, backoff=0.01)
    finally:
        ctx.engine.dispose()
    assert outcome.status == "parked" and outcome.attempts == 3
    [parked] = consumers.dead_letters(pg_ctx)
    assert parked.message_id == "unmappable-1" and "BOX12" in parked.error and parked.attempts == 3
