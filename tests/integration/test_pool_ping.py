"""Pooled PostgreSQL connections are pinged on checkout only after an idle second (hub/storage/db.py): a
connection that died while idle is replaced before the caller sees it; one in steady use goes straight to
work without the round trip SQLAlchemy's pre-ping spent on every checkout (if it died meanwhile, its
statement fails as an outage would, and SQLAlchemy drops the pool so the next checkout is fresh)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from hub.services import flash_sales
from hub.storage import db
from hub.storage.outage import is_outage
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="PostgreSQL not configured: set HUB_TEST_DATABASE_URL")


@pytest.fixture
def engine():
    e = db.make_engine(PG_URL, pool_size=1, max_overflow=0)
    yield e
    e.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("select pg_backend_pid()")).scalar_one()


def terminate(pid: int) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()


def test_a_connection_killed_while_idle_is_replaced_unseen(engine):
    first = backend_pid(engine)
    terminate(first)
    time.sleep(db.IDLE_PING_AFTER_S + 0.3)
    assert backend_pid(engine) != first                      # no error: the dead one was dropped on checkout


def test_a_connection_in_steady_use_is_not_pinged(engine):
    first = backend_pid(engine)
    terminate(first)                                          # and at once: it idled well under a second
    with pytest.raises(OperationalError) as failed:           # not pinged, so its statement meets the dead socket
        backend_pid(engine)
    assert is_outage(failed.value)                            # an outage: waited out by consumers, 503 by the API
    assert backend_pid(engine) != first                      # the pool was dropped: the next checkout is fresh


def test_a_warmed_pool_holds_its_connections_open_and_a_database_away_is_not_fatal():
    """A gateway opens its pool at start (db.warm_pool), so a rush's first orders do not each connect."""
    warm = db.make_engine(PG_URL)
    try:
        db.warm_pool(warm, 5)
        assert warm.pool.checkedin() == 5 and warm.pool.checkedout() == 0
    finally:
        warm.dispose()
    away = db.make_engine("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    db.warm_pool(away, 3)                    # logged, not raised: the first requests meet the outage instead
    assert away.pool.checkedin() == 0
    away.dispose()


def test_each_warmed_connection_is_prepared_for_a_rush_and_left_clean(pg_ctx):
    """Each fresh server process reads a table's catalogue the first time it meets it: the gateway has every
    pooled connection read what a rush's orders touch (the first rush's p99: 340 -> 200 ms), in a
    transaction rolled back, so no connection goes back to the pool inside one."""
    engine, backends = db.make_engine(PG_URL), []

    def prepare(conn):
        flash_sales.prepare_connection(conn)
        backends.append(conn.exec_driver_sql("select pg_backend_pid()").scalar())
        assert conn.in_transaction()

    try:
        db.warm_pool(engine, 4, prepare=prepare)
        assert len(set(backends)) == 4 and engine.pool.checkedin() == 4
        with engine.connect() as conn:
            assert conn.exec_driver_sql("select pg_backend_pid()").scalar() in backends
            idle = conn.exec_driver_sql("select count(*) from pg_stat_activity where pid = any(%(p)s) "
                                        "and state = 'idle in transaction'", {"p": backends}).scalar()
            assert idle == 0
    finally:
        engine.dispose()
