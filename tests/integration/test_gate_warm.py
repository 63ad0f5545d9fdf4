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


def test_a_redis_that_lost_the_scripts_still_admits():
    """The admit is sent as EVALSHA itself (issue 26: redis-py's Script layers were a tenth of a rush attempt's
    CPU): a Redis restarted or flushed answers NOSCRIPT, and the script is loaded again and run. (SCRIPT FLUSH
    empties the script cache of that whole Redis: every other user reloads on its next call, as after a restart.)"""
    from hub.domain.flash_sale import SaleTerms, Verdict

    with redis_gate() as gate:
        gate.arm(SaleTerms("FS-NOSCRIPT", 2, 1, 0, 0, 2_000_000_000_000))
        assert gate.admit("FS-NOSCRIPT", "a1", "b1", 1, 1_000) == Verdict.ADMITTED
        gate.client.script_flush()
        assert not gate.client.script_exists(gate._admit.sha)[0]
        assert gate.admit("FS-NOSCRIPT", "a2", "b2", 1, 1_000) == Verdict.ADMITTED
        assert gate.admit("FS-NOSCRIPT", "a3", "b3", 1, 1_000) == Verdict.SOLD_OUT
        assert gate.client.script_exists(gate._admit.sha)[0]
