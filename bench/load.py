"""Steady background load for the sync-latency figure: POS sales and pickup orders at a fixed pace, sent by
wrk (paced_load.lua) so the load generator takes little of the two cores the hub is measured on."""
from __future__ import annotations

import time
import uuid

from . import wrk


class PacedLoad:
    """`rate_per_s` sales and `orders_per_s` pickup orders at `store` until the block ends.

    Open loop: requests are due on the clock whatever the answers are doing (issue 11: a closed loop of 4
    threads offered 122/s of the 200/s asked), with up to `connections` out at once. A slow hub shows as
    requests sent late: `behind` is the largest lateness times the pace, the requests due and not yet sent."""

    def __init__(self, base: str, store: str, store_key: str, channel_key: str, skus: int, sold_at: str,
                 rate_per_s: float = 200, orders_per_s: float = 10, connections: int = 32, threads: int = 2):
        self._args = [store, store_key, channel_key, str(skus), str(rate_per_s), str(orders_per_s),
                      uuid.uuid4().hex[:8], sold_at, str(threads)]
        self._base, self._connections, self._threads = base, connections, threads
        self._pace = rate_per_s + orders_per_s
        self.sent = self.errors = self.behind = 0
        self.seconds = 0.0

    def __enter__(self) -> PacedLoad:
        self._wrk = wrk.Background(self._base, "paced_load.lua", self._args, connections=self._connections,
                                   threads=self._threads)
        time.sleep(1.0)                          # the load flows before the first sample is taken
        return self

    def __exit__(self, *exc: object) -> None:
        r = self._wrk.stop()
        self.sent, self.seconds = r.requests, r.seconds
        self.errors = r.errors + sum(n for status, n in r.statuses.items() if not status.startswith("2"))
        self.behind = int(r.max_lag_ms / 1000 * self._pace)
