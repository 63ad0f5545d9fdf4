"""A gateway opens the Redis gate's connections and loads its scripts at start (RedisGate.warm)."""
from __future__ import annotations

from tests.redis_support import redis_gate


def test_warming_opens_connections_and_loads_the_scripts():
    with redis_gate() as gate:
        gate.warm(8)
        pool = gate.client.connection_pool
        idle = pool._available_connections
        assert len(idle) >= 8 and all(c._sock is not None for c in idle)   # open, ready for the first attempts
        assert all(gate.client.script_exists(gate._admit.sha, gate._give_back.sha))
