"""Steady background load for the sync-latency figure: POS sales and pickup orders at a fixed pace."""
from __future__ import annotations

import itertools
import multiprocessing
import queue
import random
import threading
import time
import uuid
from typing import Any

import requests

_ids = itertools.count()


class LoadProcess:
    """A `PacedLoad` in a process of its own: the load's client threads would otherwise share this process's
    GIL with the shop simulator whose answers the sync-latency figure waits for, and slow it down."""

    def __init__(self, *args: object, **kwargs: object):
        ctx = multiprocessing.get_context("spawn")
        self._ready, self._stop, self._counts = ctx.Event(), ctx.Event(), ctx.Array("d", 4)
        self._proc = ctx.Process(target=_run_load, args=(self._ready, self._stop, self._counts, args, kwargs),
                                 daemon=True)

    def __enter__(self) -> LoadProcess:
        self._proc.start()
        self._ready.wait(60)                     # the load flows before the first sample is taken
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(30)
        self.sent, self.errors, self.seconds = int(self._counts[0]), int(self._counts[1]), self._counts[2]
        self.behind = int(self._counts[3])


def _run_load(ready: Any, stop: Any, counts: Any, args: tuple, kwargs: dict) -> None:
    with PacedLoad(*args, **kwargs) as load:
        ready.set()
        stop.wait()
    counts[0], counts[1], counts[2], counts[3] = load.sent, load.errors, load.seconds, load.behind


class PacedLoad:
    """`rate_per_s` sales (and `orders_per_s` pickup orders) at `store` until stopped.

    Open loop: one pacer thread queues each request at its time whatever the answers are doing, and a
    pool of `threads` clients sends them. The earlier closed loop (4 threads, each waiting for its answer
    before the next) offered 122/s of the 200/s asked on a busy machine, so the figure measured the
    generator; now a slow hub shows as a backlog (`behind`) rather than as a lower offered rate."""

    def __init__(self, base: str, store: str, store_key: str, channel_key: str, skus: list[str], sold_at: str,
                 rate_per_s: float = 200, orders_per_s: float = 10, threads: int = 32):
        self.base, self.store, self.skus, self.sold_at = base, store, skus, sold_at
        self.store_key, self.channel_key = store_key, channel_key
        self.stop_flag = threading.Event()
        self.sent = self.errors = self.behind = 0
        self._jobs: queue.Queue = queue.Queue()
        self._count = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]
        self._threads.append(threading.Thread(target=self._pacer, args=(rate_per_s, orders_per_s), daemon=True))

    def __enter__(self) -> PacedLoad:
        self.started = time.perf_counter()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self._threads:
            t.join(10)
        self.seconds = time.perf_counter() - self.started

    def _pacer(self, sales_per_s: float, orders_per_s: float) -> None:
        """Queue a sale every 1/sales_per_s seconds and an order every 1/orders_per_s, on the clock."""
        now = time.perf_counter()
        due = {self._sale: now, self._order: now}
        step = {self._sale: 1.0 / sales_per_s, self._order: 1.0 / orders_per_s}
        while not self.stop_flag.is_set():
            send = min(due, key=due.get)
            time.sleep(max(0.0, due[send] - time.perf_counter()))
            self._jobs.put(send)
            due[send] += step[send]
            self.behind = max(self.behind, self._jobs.qsize())

    def _client(self) -> None:
        session = requests.Session()
        while not self.stop_flag.is_set():
            try:
                send = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                ok = send(session).status_code < 300
            except requests.RequestException:
                ok = False
            with self._count:
                self.sent += 1
                self.errors += 0 if ok else 1

    def _sale(self, session: requests.Session) -> requests.Response:
        body = {"receipt_id": f"L{uuid.uuid4().hex[:10]}-{next(_ids)}", "sold_at": self.sold_at,
                "lines": [{"sku": random.choice(self.skus), "qty": 1}]}
        return session.post(f"{self.base}/api/v1/stores/{self.store}/sales", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {self.store_key}"})

    def _order(self, session: requests.Session) -> requests.Response:
        body = {"lines": [{"sku": random.choice(self.skus), "qty": 1}],
                "buyer": {"id": f"load-{uuid.uuid4().hex[:6]}", "name": "Load", "phone": "13800000000"},
                "fulfillment": {"type": "pickup", "store_id": self.store}}
        return session.post(f"{self.base}/api/v1/orders", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {self.channel_key}",
                                     "Idempotency-Key": uuid.uuid4().hex})
