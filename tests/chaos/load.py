"""The load: POS receipts, paid pickup orders and paid delivery orders through the public API, each retried with
the same receipt id / idempotency key until the hub answers it."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

RETRY_PAUSE_S = 0.2
GIVE_UP_AFTER_S = 120.0      # a request still unanswered after this counts as unanswered


@dataclass
class Tally:
    sold: Counter = field(default_factory=Counter)            # (sku, store) -> units the hub accepted
    reserved: Counter = field(default_factory=Counter)        # (sku, store) -> units in paid pickup orders
    paid_orders: dict[str, str] = field(default_factory=dict)  # order id -> store
    deliveries: dict[str, str] = field(default_factory=dict)   # paid delivery order id -> the store it is sent from
    requests: int = 0
    retries: int = 0
    unanswered: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    def __init__(self, base: str, tally: Tally):
        self.base, self.tally = base, tally
        self.http = requests.Session()

    def send(self, what: str, method: str, path: str, key: str, ok: tuple[int, ...], **kw: Any) -> dict | None:
        """The same request until it is answered with one of `ok` (or a 4xx that is final)."""
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        deadline = time.monotonic() + GIVE_UP_AFTER_S
        with self.tally.lock:
            self.tally.requests += 1
        while time.monotonic() < deadline:
            try:
                r = self.http.request(method, self.base + path, headers=headers, timeout=10, **kw)
            except requests.RequestException:
                r = None
            if r is not None and r.status_code in ok:
                return r.json()
            if r is not None and 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                with self.tally.lock:
                    self.tally.refused.append(f"{what}: {r.status_code} {r.text[:200]}")
                return None
            with self.tally.lock:
                self.tally.retries += 1
            time.sleep(RETRY_PAUSE_S)
        with self.tally.lock:
            self.tally.unanswered.append(what)
        return None


def sell(client: Client, store: str, key: str, sku: str, receipt_id: str) -> None:
    body = {"receipt_id": receipt_id, "sold_at": datetime.now(UTC).isoformat(), "lines": [{"sku": sku, "qty": 1}]}
    answer = client.send(f"receipt {receipt_id}", "POST", f"/api/v1/stores/{store}/sales", key, (200, 201), json=body)
    if answer is not None:
        with client.tally.lock:
            client.tally.sold[(sku, store)] += 1


def pickup_order(client: Client, channel_key: str, store: str, sku: str, pay: Any,
                 near: tuple[float, float] | None = None) -> None:
    """Place (idempotency key), then pay through the payment simulator's signed notification until acknowledged.
    With `near` (a store's coordinates) a delivery order to an address there, which routing gives that store."""
    key = uuid.uuid4().hex
    fulfillment: dict[str, Any] = {"type": "pickup", "store_id": store}
    if near is not None:
        fulfillment = {"type": "delivery", "address": {"text": f"next to store {store}", "lat": near[0] + 0.0005,
                                                       "lng": near[1], "name": "Chaos Buyer", "phone": "13900001111"}}
    body = {"lines": [{"sku": sku, "qty": 1}], "buyer": {"id": f"b-{key[:8]}", "name": "Chaos Buyer",
                                                         "phone": "13900001111"},
            "fulfillment": fulfillment}
    placed = client.send(f"order {key}", "POST", "/api/v1/orders", channel_key, (200, 201),
                         headers={"Idempotency-Key": key}, json=body)
    if placed is None:
        return
    order_id = placed["order_id"]
    total = None
    deadline = time.monotonic() + GIVE_UP_AFTER_S
    while time.monotonic() < deadline:
        try:
            if total is None:
                total = client.http.get(f"{client.base}/api/v1/orders/{order_id}", timeout=10,
                                        headers={"Authorization": f"Bearer {channel_key}"}).json()["total_fen"]
            r = pay.notify(f"{client.base}/callbacks/wechat_pay", order_id, total)
            if r.status_code == 200:
                with client.tally.lock:
                    (client.tally.deliveries if near is not None else client.tally.paid_orders)[order_id] = store
                    client.tally.reserved[(sku, store)] += 1      # a delivery's too: no rider moves in the run
                return
        except (requests.RequestException, KeyError, ValueError):
            pass
        with client.tally.lock:
            client.tally.retries += 1
        time.sleep(RETRY_PAUSE_S)
    with client.tally.lock:
        client.tally.unanswered.append(f"payment of {order_id}")


def run_load(base: str, keys: dict[str, str], stores: list[str], skus: list[str], pay: Any, *, sales: int,
             orders: int, clients: int, duration_s: float, tally: Tally, pickup_stores: list[str] | None = None,
             deliveries: int = 0, delivery_from: dict[str, tuple[float, float]] | None = None
             ) -> list[threading.Thread]:
    """Start `clients` threads sharing `sales` receipts, `orders` pickup orders (at `pickup_stores`, default
    `stores`) and `deliveries` delivery orders (to addresses next to the stores of `delivery_from`, in turn), paced
    evenly over `duration_s` (a steady stream across the faults, not one burst before them); returns the threads."""
    pickup_at = pickup_stores or stores
    near = delivery_from or {}
    jobs: list[tuple] = []
    for i in range(sales):
        store, sku = stores[i % len(stores)], skus[(i // len(stores)) % len(skus)]
        jobs.append(("sale", store, sku, f"CHAOS-{store}-{i:05d}"))
    for i in range(orders):
        # every tenth job an order, spread over the run
        jobs.insert(min(len(jobs), i * max(1, sales // max(orders, 1)) + i),
                    ("order", pickup_at[i % len(pickup_at)], skus[i % len(skus)], None))
    senders = sorted(near)
    for i in range(deliveries if senders else 0):      # spread over the run as the pickup orders are
        jobs.insert(min(len(jobs), i * max(1, len(jobs) // max(deliveries, 1)) + i // 2),
                    ("delivery", senders[i % len(senders)], skus[(i + 1) % len(skus)], None))
    lock = threading.Lock()
    start, step, issued = time.monotonic(), duration_s / max(len(jobs), 1), [0]

    def worker() -> None:
        client = Client(base, tally)
        while True:
            with lock:
                if not jobs:
                    return
                kind, store, sku, receipt = jobs.pop(0)
                due = start + issued[0] * step
                issued[0] += 1
            time.sleep(max(0.0, due - time.monotonic()))
            if kind == "sale":
                sell(client, store, keys[store], sku, receipt)
            else:
                pickup_order(client, keys["channel"], store, sku, pay, near[store] if kind == "delivery" else None)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads
