"""The sold-out cache in Redis, shared by every gateway replica and written by channel sync (`hub.ports.SoldOutCache`).

  <prefix>so:<location>:<sku>     the store's low available figure, with a PX of LOW_TTL_MS
  <prefix>ik:<channel>:<key>      "1": a pickup order with this Idempotency-Key reached the ledger

A gateway's look is one MGET; an unreachable Redis is a miss (logged once a minute), never an error: the
cache only spares the order database, the ledger answers without it."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence

import redis

from hub.domain.sold_out import LOW_TTL_MS, PLACED_TTL_S, Pair
from hub.ports import SoldOutCache

from .redis_clients import OneConnectionClients

log = logging.getLogger(__name__)
QUIET_S = 60.0                 # one warning a minute while Redis is away, not one per request


class RedisSoldOut:
    def __init__(self, client: redis.Redis, prefix: str = "hub:"):
        self.client, self.prefix = client, prefix
        self._lookers = OneConnectionClients(client.connection_pool)
        self._warned = 0.0

    @classmethod
    def from_url(cls, url: str, prefix: str = "hub:") -> RedisSoldOut:
        # A short timeout: a slow Redis must not make an order wait longer than the ledger would.
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=0.5,
                                        socket_connect_timeout=0.5), prefix)

    def _low_key(self, pair: Pair) -> str:
        return f"{self.prefix}so:{pair[0]}:{pair[1]}"

    def _away(self, what: str, exc: Exception) -> None:
        if time.monotonic() - self._warned > QUIET_S:
            self._warned = time.monotonic()
            log.warning("sold-out cache: %s failed (the ledger answers meanwhile): %s", what, exc)

    def lookup(self, pairs: Sequence[Pair], placed_key: str) -> tuple[dict[Pair, int], bool]:
        try:
            with self._lookers.lend() as client:
                answer: list[str | None] = client.mget(  # type: ignore[assignment]  # the sync client's list
                    [f"{self.prefix}ik:{placed_key}", *map(self._low_key, pairs)])
            placed, *figures = answer
        except redis.RedisError as exc:
            self._away("a look", exc)
            return {}, False
        return {p: int(f) for p, f in zip(pairs, figures, strict=True) if f is not None}, placed is not None

    def note(self, low: Mapping[Pair, int], other: Iterable[Pair] = (), ttl_ms: int = LOW_TTL_MS) -> None:
        forget = [self._low_key(p) for p in other]
        if not low and not forget:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            if forget:
                pipe.delete(*forget)
            for pair, figure in low.items():
                pipe.set(self._low_key(pair), figure, px=ttl_ms)
            pipe.execute()
        except redis.RedisError as exc:
            self._away("a note", exc)

    def placed(self, key: str, ttl_s: int = PLACED_TTL_S) -> None:
        try:
            self.client.set(f"{self.prefix}ik:{key}", 1, ex=ttl_s)
        except redis.RedisError as exc:
            self._away("recording a placed order", exc)


# The port this class implements, checked by mypy.
_port_check: type[SoldOutCache] = RedisSoldOut
