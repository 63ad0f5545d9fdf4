"""`insert_ignore_many`: rows whose key exists are skipped, the others inserted — in one statement on PostgreSQL
however many rows (psycopg2's own executemany made it a round trip per row), and on SQLite."""
from __future__ import annotations

from sqlalchemy import event

from hub.storage.tables import ProcessedMessage, utcnow
from hub.storage.upsert import insert_ignore_many


def _rows(ids: list[str]) -> list[dict]:
    return [{"consumer": "probe", "message_id": i, "processed_at": utcnow()} for i in ids]


def test_many_rows_in_one_statement_the_existing_ones_skipped(ctx):
    with ctx.uow() as uow:
        insert_ignore_many(uow.session, ProcessedMessage, _rows(["m0", "m1"]))
        uow.commit()
    ids = [f"m{i}" for i in range(120)]
    sent: list[str] = []                              # each statement as handed to the driver

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement.lower())

    event.listen(ctx.engine, "before_cursor_execute", record)
    try:
        with ctx.uow() as uow:
            insert_ignore_many(uow.session, ProcessedMessage, _rows(ids))
            uow.commit()
    finally:
        event.remove(ctx.engine, "before_cursor_execute", record)
    inserts = [s for s in sent if s.lstrip().startswith("insert")]
    if ctx.engine.dialect.name == "postgresql":   # one statement carrying every row, not psycopg2's send per row
        assert len(inserts) == 1 and inserts[0].count("on conflict do nothing") == 1
        assert inserts[0].count("%(message_id") == len(ids), inserts[0][:200]
    with ctx.reader() as uow:
        stored = {m.message_id for m in uow.session.query(ProcessedMessage).filter_by(consumer="probe")}
    assert stored == set(ids)


def test_postgresql_engines_batch_an_executemany_of_updates():
    """psycopg2's own executemany is a round trip per row; the hub's PostgreSQL engines page them instead."""
    from hub.storage.db import make_engine

    engine = make_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")     # not connected: only configured
    assert engine.dialect.executemany_mode.name == "EXECUTEMANY_VALUES_PLUS_BATCH"
    assert not engine.dialect.supports_sane_multi_rowcount        # nothing may count an executemany's rows
    engine.dispose()
