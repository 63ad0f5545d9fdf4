"""The test run's own corner of Redis: database 11 (HUB_TEST_REDIS_URL) and a key prefix of its own,
removed afterwards — nothing else in that Redis is touched."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


@contextmanager
def redis_gate() -> Iterator[object]:
    import redis

    from connectors.redis_gate import RedisGate

    prefix = f"hubtest:{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: scripts/services.sh starts it")
    try:
        yield RedisGate(client, prefix)
    finally:
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


@contextmanager
def redis_sold_out() -> Iterator[object]:
    """The sold-out cache in Redis, under a prefix of its own (removed afterwards)."""
    import redis

    from connectors.redis_sold_out import RedisSoldOut

    prefix = f"hubtest:{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: scripts/services.sh starts it")
    try:
        yield RedisSoldOut(client, prefix)
    finally:
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
        client.close()
