"""The measured work, against a hub that is already running (either mode)."""
from __future__ import annotations

import itertools
import random
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC

import requests

from workers.launcher import wait_for


@dataclass
class Figures:
    ingest_per_s: float
    sync_ms: list[float]
    orders_per_s: float
    refused: int

    def pct(self, q: float) -> float:
        data = sorted(self.sync_ms)
        return data[min(len(data) - 1, int(round(q / 100 * (len(data) - 1))))]


_receipts = itertools.count()


def _sale(session: requests.Session, base: str, store_key: str, store: str, sku: str) -> None:
    body = {"receipt_id": f"B{uuid.uuid4().hex[:12]}-{next(_receipts)}", "sold_at": _now(),
            "lines": [{"sku": sku, "qty": 1}]}
    r = session.post(f"{base}/api/v1/stores/{store}/sales", json=body, headers={"Authorization": f"Bearer {store_key}"},
                     timeout=30)
    r.raise_for_status()


def _now() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat()


def ingest(base: str, store_keys: dict[str, str], skus: list[str], n: int, clients: int = 8) -> float:
    """POS sales through the API into the ledger: requests per second (each is one stock event)."""
    def worker(count: int) -> None:
        session, rng = requests.Session(), random.Random()
        for _ in range(count):
            store = rng.choice(sorted(store_keys))
            _sale(session, base, store_keys[store], store, rng.choice(skus))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [n // clients] * clients))
    return (n // clients * clients) / (time.perf_counter() - started)


def sync_latency(base: str, store_key: str, store: str, sku: str, shop: object, start_figure: int,
                 channel_safety: int, samples: int) -> list[float]:
    """POS sale -> the shop simulator holds the new figure, one sale at a time (milliseconds)."""
    session = requests.Session()
    out = []
    figure = start_figure
    for _ in range(samples):
        figure -= 1
        expected = max(figure - channel_safety, 0)
        started = time.perf_counter()
        _sale(session, base, store_key, store, sku)
        wait_for(lambda e=expected: shop.stock_of(sku, store) == e, 30, "the shop figure", interval=0.0005)
        out.append((time.perf_counter() - started) * 1000)
    return out


def orders(base: str, channel_key: str, skus: list[str], store: str, n: int, clients: int = 8) -> tuple[float, int]:
    """Pickup orders through routing and reservation: accepted orders per second, and refusals."""
    refused = [0]

    def worker(count: int) -> None:
        session, rng = requests.Session(), random.Random()
        for _ in range(count):
            body = {"lines": [{"sku": rng.choice(skus), "qty": 1}],
                    "buyer": {"id": f"bench-{uuid.uuid4().hex[:6]}", "name": "Bench", "phone": "13800000000"},
                    "fulfillment": {"type": "pickup", "store_id": store}}
            r = session.post(f"{base}/api/v1/orders", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {channel_key}", "Idempotency-Key": uuid.uuid4().hex})
            if r.status_code == 409:
                refused[0] += 1
            else:
                r.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [n // clients] * clients))
    return (n // clients * clients - refused[0]) / (time.perf_counter() - started), refused[0]


def summary(fig: Figures) -> dict[str, float]:
    return {"ingest_per_s": fig.ingest_per_s, "p50": fig.pct(50), "p95": fig.pct(95), "p99": fig.pct(99),
            "mean": statistics.fmean(fig.sync_ms), "orders_per_s": fig.orders_per_s}
