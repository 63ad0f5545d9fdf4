"""Hot statements on the DB-API cursor (hub/storage/raw.py) answer as SQLAlchemy's execute would — rows, types,
row counts, errors, outages — and a unit of work that needs no ORM makes no session (hub/storage/uow.py)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, event, exc, select, text, update
from sqlalchemy.orm import Session

from hub.services import till_sales
from hub.storage import raw
from hub.storage.outage import is_outage
from hub.storage.tables import StockLevel, StockMovement, utcnow
from hub.storage.uow import write_detached

LEVELS, MOVES = StockLevel.__table__, StockMovement.__table__
COUNTED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _seed(ctx) -> None:
    with ctx.uow() as uow:
        uow.session.add(StockLevel(sku="TEA-001", location_id="S001", on_hand=7, reserved=1,
                                   last_counted_at=COUNTED_AT, updated_at=utcnow()))
        uow.commit()


def _sent_by_sqlalchemy(engine):
    """Statements run through SQLAlchemy's execute, and statements sent on a cursor at all."""
    executes, cursor = [], []
    event.listen(engine, "before_execute", lambda *a: executes.append(a))
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *a: cursor.append(sql))
    return executes, cursor


def test_rows_come_back_as_from_sqlalchemy_typed_and_named(ctx):
    _seed(ctx)
    lock = till_sales.LOCK
    with ctx.uow() as uow:
        conn = uow.connection
        ours = raw.execute(conn, lock.on(conn), {"store": "S001", "skus": ["TEA-001", "CUP-002"]}).all()
        theirs = conn.execute(lock.on(conn), {"store": "S001", "skus": ["TEA-001", "CUP-002"]}).all()
    assert [tuple(r) for r in ours] == [tuple(r) for r in theirs] == [("TEA-001", 7, COUNTED_AT)]
    (row,) = ours
    assert row.sku == "TEA-001" and row.on_hand == 7
    assert row.last_counted_at.tzinfo is not None       # the column's own type read it (naive in the table)


def test_on_postgresql_the_cursor_runs_it_and_listeners_still_see_it(pg_ctx):
    _seed(pg_ctx)
    executes, cursor = _sent_by_sqlalchemy(pg_ctx.engine)
    with pg_ctx.uow() as uow:
        conn = uow.connection
        rows = raw.execute(conn, till_sales.LOCK.on(conn), {"store": "S001", "skus": ["TEA-001"]})
    assert len(rows.all()) == 1
    assert executes == [] and len(cursor) == 1 and "for update" in cursor[0].lower()


def test_a_row_count_and_parameters_bound_through_their_types(ctx):
    _seed(ctx)
    later = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    stmt = update(LEVELS).where(LEVELS.c.sku == "TEA-001").values(last_counted_at=later)
    with ctx.uow() as uow:
        assert raw.execute(uow.connection, stmt).rowcount == 1
        uow.commit()
    with ctx.uow() as uow:
        stored = uow.connection.execute(text("select last_counted_at from stock_levels")).scalar_one()
    # UtcDateTime keeps UTC without an offset; SQLite hands the text back
    assert str(stored).startswith("2026-12-02 08:00:00")


def test_a_unique_violation_is_sqlalchemys_integrity_error_and_the_rollback_clean(ctx):
    _seed(ctx)
    row = {"sku": "TEA-001", "location_id": "S001", "kind": "delta", "qty": -1, "source": "pos:S001",
           "external_id": "R-1", "occurred_at": utcnow(), "recorded_at": utcnow(), "applied": True}
    stmt = MOVES.insert().values({k: v for k, v in row.items()})
    with ctx.uow() as uow:
        raw.execute(uow.connection, stmt)
        with pytest.raises(exc.IntegrityError):
            raw.execute(uow.connection, stmt)
    with ctx.uow() as uow:
        assert uow.connection.execute(select(MOVES.c.id)).all() == []


def test_a_connection_lost_under_a_statement_reads_as_an_outage_and_the_pool_recovers(pg_ctx):
    _seed(pg_ctx)
    with pg_ctx.uow() as uow:
        conn = uow.connection
        pid = conn.execute(text("select pg_backend_pid()")).scalar_one()
        with pg_ctx.engine.connect() as other:
            other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        with pytest.raises(exc.DBAPIError) as lost:
            raw.execute(conn, till_sales.LOCK.on(conn), {"store": "S001", "skus": ["TEA-001"]})
    assert lost.value.connection_invalidated and is_outage(lost.value)
    with pg_ctx.uow() as uow:                            # the next unit of work gets a live connection
        assert len(raw.execute(uow.connection, select(LEVELS.c.sku)).all()) == 1


def test_what_the_cursor_cannot_do_as_sqlalchemy_would_is_left_to_sqlalchemy(pg_ctx):
    _seed(pg_ctx)
    expanding = select(LEVELS.c.sku).where(LEVELS.c.sku.in_(["TEA-001", "CUP-002"]))
    executes, _ = _sent_by_sqlalchemy(pg_ctx.engine)
    with pg_ctx.uow() as uow:
        assert raw.execute(uow.connection, expanding).scalars() == ["TEA-001"]
        many = [{"s": "TEA-001", "n": 5}, {"s": "CUP-002", "n": 4}]
        stmt = update(LEVELS).where(LEVELS.c.sku == bindparam("s")).values(on_hand=bindparam("n"))
        raw.execute(uow.connection, stmt, many)
        assert uow.connection.execute(select(LEVELS.c.on_hand)).scalar_one() == 5
    assert len(executes) == 3


def test_a_sale_makes_no_orm_session_and_a_session_made_later_shares_its_transaction(ctx):
    _seed(ctx)
    made = []

    def begun(session, transaction):
        made.append(session)

    event.listen(Session, "after_transaction_create", begun)
    try:
        with ctx.uow() as uow:
            till_sales.apply_receipts(uow, ctx.config, "S001", [till_sales.Receipt(
                "R-9", utcnow() - timedelta(minutes=1), [("TEA-001", 2)])])
            uow.commit()
        assert made == []
    finally:
        event.remove(Session, "after_transaction_create", begun)
    with ctx.uow() as uow:
        till_sales.apply_receipts(uow, ctx.config, "S001", [till_sales.Receipt(
            "R-10", utcnow() - timedelta(minutes=1), [("TEA-001", 1)])])
        write_detached(uow)                              # the sale's queued rows sent, not committed
        # the ORM, asked after the Core writes, reads them: one transaction ...
        assert uow.session.get(StockLevel, ("TEA-001", "S001")).on_hand == 4
    with ctx.uow() as uow:                               # ... and goes with it: the block never committed
        assert uow.session.get(StockLevel, ("TEA-001", "S001")).on_hand == 5


def test_a_unit_of_work_commits_twice_on_its_connection(ctx):
    _seed(ctx)
    with ctx.uow() as uow:
        raw.execute(uow.connection, update(LEVELS).values(on_hand=3))
        uow.commit()
        uow.session.get(StockLevel, ("TEA-001", "S001")).on_hand = 2      # the ORM after a commit: a new transaction
        uow.commit()
        raw.execute(uow.connection, update(LEVELS).values(on_hand=1))    # and Core again, never committed
    with ctx.uow() as uow:
        assert raw.execute(uow.connection, select(LEVELS.c.on_hand)).scalars() == [2]


def test_core_statements_after_the_sessions_commit_are_committed_by_the_next(ctx):
    _seed(ctx)
    with ctx.uow() as uow:
        uow.session.get(StockLevel, ("TEA-001", "S001")).on_hand = 6      # the ORM first
        uow.commit()
        raw.execute(uow.connection, update(LEVELS).values(on_hand=4))    # then Core only: the session never sees it
        uow.commit()
    with ctx.uow() as uow:
        assert raw.execute(uow.connection, select(LEVELS.c.on_hand)).scalars() == [4]


def test_the_relays_outbox_rows_read_the_same_either_way_the_envelope_as_its_stored_json_text(ctx):
    from hub.events import StockChanged
    from workers.relay import _UNSENT

    with ctx.uow() as uow:
        uow.emit(StockChanged(sku="TEA-001", location_id="S001", cause="pos:S001:sale"))
        uow.commit()
    with ctx.uow() as uow:
        ours = raw.execute(uow.connection, _UNSENT, {"n": 10}).all()
        theirs = uow.connection.execute(_UNSENT, {"n": 10}).all()
    assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
    envelope = json.loads(ours[0].payload)               # published as it is: never decoded and encoded again
    assert envelope["data"] == {"sku": "TEA-001", "location_id": "S001", "cause": "pos:S001:sale"}
    assert envelope["id"] == ours[0].message_id
