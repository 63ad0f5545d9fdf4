from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import BROKER_URL, PG_URL

from .harness import purge_hub_queues


@pytest.fixture
def backbone(pg_ctx):
    """PostgreSQL + RabbitMQ, empty queues, and the tables the test consumers write to."""
    if not BROKER_URL:
        pytest.skip("RabbitMQ not configured: set HUB_TEST_BROKER_URL (make test does)")
    purge_hub_queues(BROKER_URL)
    with pg_ctx.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS test_effects, test_deliveries"))
        conn.execute(text("CREATE TABLE test_effects (id serial primary key, n integer not null)"))
        conn.execute(text("CREATE TABLE test_deliveries (id serial primary key, message_id text not null)"))
    yield pg_ctx, PG_URL, BROKER_URL
    with pg_ctx.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS test_effects, test_deliveries"))
