"""The sold-out cache's rules, and its in-process store of embedded mode (the port is `hub.ports.SoldOutCache`).

A pickup order for a (store, SKU) the cache knows to be low is answered 409 without the order database. The
cache holds, per pair, the store's available figure (`domain/stock.available`, after the store's safety stock)
where it is low — written by channel sync from the figure it reads for each `stock.changed`, and by a gateway
from the figure the ledger gave when it refused an order — and forgets it when channel sync reads a figure that
is not low (a restock, a cancel, an expiry), or after `hub.sold_out_ttl_ms` (LOW_TTL_MS) whatever happens. It
only ever refuses: an order it lets through is decided by the ledger's conditional UPDATE, so a stale entry can
refuse wrongly (for that long at most), never admit beyond stock.

The Idempotency-Keys of pickup orders that reached the ledger are kept too (PLACED_TTL_S): a retry of a placed
order is answered with its order, never refused from the cache.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

LOW_TTL_MS = 2000           # how long a low figure is believed without a fresh one (`hub.sold_out_ttl_ms`)
PLACED_TTL_S = 24 * 3600    # how long a retry of a placed order is told apart from a new attempt

Pair = tuple[str, str]      # (location_id, sku)
K = TypeVar("K")
V = TypeVar("V")


def is_low(figure: int, channel_safeties: Iterable[int]) -> bool:
    """A store's figure worth keeping: some channel may sell nothing there (what channel sync writes)."""
    return figure - max(channel_safeties, default=0) <= 0


def short_lines(lines: Sequence[tuple[str, int]], location_id: str, known: Mapping[Pair, int],
                channel_safety: int) -> list[dict[str, object]]:
    """The lines the cache's figures cannot serve to a channel holding back `channel_safety`, shaped as the
    ledger's refusal (`InsufficientStock`); empty when any line is not known to be short (the ledger decides)."""
    wanted: dict[str, int] = {}
    for sku, qty in lines:
        wanted[sku] = wanted.get(sku, 0) + qty
    short = []
    for sku, qty in sorted(wanted.items()):
        figure = known.get((location_id, sku))
        if figure is not None and max(figure - channel_safety, 0) < qty:
            short.append({"sku": sku, "location_id": location_id, "wanted": qty,
                          "available": max(figure - channel_safety, 0)})
    return short


def figure_from_refusal(available_to_channel: int, channel_safety: int) -> int:
    """The store's figure as far as a refusal tells it: what the channel was shown plus what it holds back (an
    upper bound when the channel was shown 0, so another channel holding back less is not refused by it)."""
    return available_to_channel + channel_safety


BOUND = 100_000             # entries the in-process store keeps: a dict is no cache without a bound


def _pruned(entries: dict[K, V], deadline: Callable[[V], float], now: float) -> dict[K, V]:
    """The live entries, at most half of BOUND (the newest: dicts keep insertion order), so pruning is rare."""
    live = [(k, v) for k, v in entries.items() if deadline(v) > now]
    return dict(live[-BOUND // 2:])


class MemorySoldOut:
    """Embedded mode's cache: one process, so a lock around a dict with deadlines is the store."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._low: dict[Pair, tuple[int, float]] = {}
        self._placed: dict[str, float] = {}
        self._lock = threading.Lock()

    def lookup(self, pairs: Sequence[Pair], placed_key: str) -> tuple[dict[Pair, int], bool]:
        now = self._clock()
        with self._lock:
            placed = self._placed.get(placed_key, 0.0) > now
            known = {p: v[0] for p in pairs if (v := self._low.get(p)) is not None and v[1] > now}
        return known, placed

    def note(self, low: Mapping[Pair, int], other: Iterable[Pair] = (), ttl_ms: int = LOW_TTL_MS) -> None:
        until = self._clock() + ttl_ms / 1000
        with self._lock:
            for pair in other:
                self._low.pop(pair, None)
            for pair, figure in low.items():
                self._low[pair] = (figure, until)
            if len(self._low) > BOUND:
                self._low = _pruned(self._low, lambda v: v[1], self._clock())

    def placed(self, key: str, ttl_s: int = PLACED_TTL_S) -> None:
        with self._lock:
            self._placed[key] = self._clock() + ttl_s
            if len(self._placed) > BOUND:
                self._placed = _pruned(self._placed, lambda t: t, self._clock())
