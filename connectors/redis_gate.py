"""The flash-sale admission gate in Redis: one Lua script per attempt, so quota, the buyer's limit and
the buyer's pace are decided atomically however many gateway replicas race (`hub.ports.AdmissionGate`).

Keys of one sale share a hash tag (`{fs:<id>}`), so a Redis Cluster keeps them on one node:
  <prefix>{fs:ID}        hash: quota, left, limit, interval, starts, ends, ended
  <prefix>{fs:ID}:buyer  hash: buyer -> units held
  <prefix>{fs:ID}:held   hash: attempt key -> "qty|buyer" (what give_back returns, once)
  <prefix>{fs:ID}:pace   hash: buyer -> when (epoch ms) the buyer's last paced attempt came
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

from hub.domain.flash_sale import GateState, SaleTerms, Verdict
from hub.ports import AdmissionGate, GateUnavailable

from .redis_clients import OneConnectionClients

F = TypeVar("F", bound=Callable[..., Any])

_ADMIT = """
local s = redis.call('HMGET', KEYS[1], 'left', 'limit', 'interval', 'starts', 'ends', 'ended')
if not s[1] then return 'unknown' end
local now, qty = tonumber(ARGV[4]), tonumber(ARGV[3])
if s[6] == '1' or now >= tonumber(s[5]) then return 'ended' end
if now < tonumber(s[4]) then return 'not_started' end
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  local sep = string.find(held, '|', 1, true)
  if tonumber(string.sub(held, 1, sep - 1)) == qty and string.sub(held, sep + 1) == ARGV[2] then return 'again' end
  return 'conflict'
end
if tonumber(s[1]) < qty then return 'sold_out' end
local interval = tonumber(s[3])
if interval > 0 then
  local last = redis.call('HGET', KEYS[4], ARGV[2])
  if last and now - tonumber(last) < interval then return 'too_fast' end
  redis.call('HSET', KEYS[4], ARGV[2], now)
end
local had = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if had + qty > tonumber(s[2]) then return 'over_limit' end
redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[2], ARGV[2], qty)
redis.call('HSET', KEYS[3], ARGV[1], qty .. '|' .. ARGV[2])
return 'admitted'
"""

_GIVE_BACK = """
local v = redis.call('HGET', KEYS[3], ARGV[1])
if not v then return 0 end
local sep = string.find(v, '|', 1, true)
local qty, buyer = tonumber(string.sub(v, 1, sep - 1)), string.sub(v, sep + 1)
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'left', qty)
redis.call('HINCRBY', KEYS[2], buyer, -qty)
return qty
"""

# Arms a sale the gate lost (Redis restarted without its data, or flushed) from the ledger's live attempts, unless
# the sale is there: gateways finding it lost at once restore it once. ARGV: terms, then attempt, buyer, qty triples.
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local left = tonumber(ARGV[1])
for i = 7, #ARGV, 3 do
  local qty = tonumber(ARGV[i + 2])
  redis.call('HSET', KEYS[3], ARGV[i], qty .. '|' .. ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i + 1], qty)
  left = left - qty
end
redis.call('HSET', KEYS[1], 'quota', ARGV[1], 'left', left, 'limit', ARGV[2], 'interval', ARGV[3],
           'starts', ARGV[4], 'ends', ARGV[5], 'ended', ARGV[6])
return 1
"""


def _reachable(method: F) -> F:
    """Redis away (refused, cut, timed out, still loading) is the port's GateUnavailable: the core waits it out
    (a consumer) or answers 503 (the API) without knowing redis."""
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise GateUnavailable(f"redis: {exc}") from exc
    return call  # type: ignore[return-value]


class RedisGate:
    """`RedisGate.from_url("redis://127.0.0.1:6379/0", prefix="hub:")`."""

    def __init__(self, client: redis.Redis, prefix: str = "hub:"):
        self.client, self.prefix = client, prefix
        self._admitters = OneConnectionClients(client.connection_pool)
        self._admit = client.register_script(_ADMIT)
        self._give_back = client.register_script(_GIVE_BACK)
        self._restore = client.register_script(_RESTORE)

    @classmethod
    def from_url(cls, url: str, prefix: str = "hub:") -> RedisGate:
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=5), prefix)

    @_reachable
    def warm(self, connections: int) -> None:
        """Open `connections` to Redis and load the scripts now (a gateway at start): a rush's first attempts,
        all at once, would otherwise each open a connection inside their own answer."""
        pool = self.client.connection_pool
        held = [pool.get_connection() for _ in range(connections)]
        for conn in held:
            pool.release(conn)
        self.client.script_load(_ADMIT)
        self.client.script_load(_GIVE_BACK)

    def _keys(self, sale_id: str) -> tuple[str, str, str, str]:
        base = f"{self.prefix}{{fs:{sale_id}}}"
        return base, f"{base}:buyer", f"{base}:held", f"{base}:pace"

    @_reachable
    def arm(self, terms: SaleTerms) -> None:
        sale, buyers, held, pace = self._keys(terms.sale_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(sale, buyers, held, pace)
        pipe.hset(sale, mapping={"quota": terms.quota, "left": terms.quota, "limit": terms.per_buyer_limit,
                                 "interval": terms.min_interval_ms, "starts": terms.starts_ms,
                                 "ends": terms.ends_ms, "ended": 0})
        pipe.execute()

    @_reachable
    def restore(self, terms: SaleTerms, held: Mapping[str, tuple[str, int]], ended: bool = False) -> bool:
        args: list[str | int] = [terms.quota, terms.per_buyer_limit, terms.min_interval_ms, terms.starts_ms,
                              terms.ends_ms, int(ended)]
        for attempt, (buyer, qty) in held.items():
            args += [attempt, buyer, qty]
        return bool(self._restore(keys=self._keys(terms.sale_id), args=args))

    @_reachable
    def admit(self, sale_id: str, attempt: str, buyer: str, qty: int, now_ms: int) -> Verdict:
        # EVALSHA sent as a command: redis-py's Script and evalsha layers were a tenth of a rush attempt's gateway
        # CPU. A Redis that lost the script (a restart, SCRIPT FLUSH) answers NOSCRIPT; the Script loads it then.
        keys = self._keys(sale_id)
        try:
            with self._admitters.lend() as client:
                return Verdict(client.execute_command("EVALSHA", self._admit.sha, len(keys), *keys, attempt, buyer,
                                                      qty, now_ms))
        except NoScriptError:
            return Verdict(self._admit(keys=keys, args=[attempt, buyer, qty, now_ms]))

    @_reachable
    def give_back(self, sale_id: str, attempt: str) -> int:
        return int(self._give_back(keys=self._keys(sale_id), args=[attempt]))

    @_reachable
    def end(self, sale_id: str) -> None:
        sale = self._keys(sale_id)[0]
        if self.client.exists(sale):
            self.client.hset(sale, "ended", "1")

    @_reachable
    def state(self, sale_id: str) -> GateState | None:
        sale, _, held, _ = self._keys(sale_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(sale)
        pipe.hgetall(held)
        fields, holding = pipe.execute()
        if not fields:
            return None
        return GateState(int(fields["quota"]), int(fields["left"]),
                         {k: int(v.split("|", 1)[0]) for k, v in holding.items()}, fields.get("ended") == "1")


# The port this class implements, checked by mypy: a method missing or of another signature fails `make test`.
_port_check: type[AdmissionGate] = RedisGate
