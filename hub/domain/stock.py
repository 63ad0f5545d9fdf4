"""Stock arithmetic, written once: what may be sold, which change a count already holds, a quota's draw.

Plain functions over ints (and the same operators over SQL columns, where a statement applies the rule),
so the hot paths keep their tuple loops: a thousand stores per stock query cost no object per row.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def available(on_hand: int, reserved: int, safety: int = 0, channel_safety: int = 0) -> int:
    """What a location may sell (never below 0), less what the asking channel holds back on top."""
    return max(max(on_hand - reserved - safety, 0) - channel_safety, 0)


def available_each(sellable: Iterable[int], held_back: Iterable[int]) -> list[int]:
    """`available` over many locations at once: `sellable` their on-hand less reserved, `held_back` each one's
    safety stock plus the channel's. The same figure (for safety stocks >= 0: both clamps at 0 come down to
    one), without a call per location: the stock query's thousand stores (tests/domain keeps the two equal)."""
    return [s - h if s > h else 0 for s, h in zip(sellable, held_back, strict=True)]


def channel_available(location_available: int, channel_safety: int) -> int:
    """A location's available figure as a channel holding back `channel_safety` may sell it."""
    return max(location_available - channel_safety, 0)


@dataclass(frozen=True, slots=True)
class Allocation:
    """A channel's part of one store's stock of one SKU: `share` percent of what the store may sell (on-hand
    less its safety stock), at most `cap` units, nothing when not `listed`. What the channel holds open
    (its reservations) counts against it; its own safety stock is held back from it on top."""

    share: int = 100
    cap: int | None = None
    listed: bool = True

    def allowance(self, pool: int) -> int:
        """Units the channel may hold open out of a store's `pool` (on-hand less the store's safety stock)."""
        if not self.listed:
            return 0
        allowed = max(pool, 0) * self.share // 100
        return allowed if self.cap is None else min(allowed, self.cap)


def channel_figure(on_hand: int, reserved: int, safety: int, channel_safety: int,
                   allocation: Allocation | None = None, channel_reserved: int = 0) -> int:
    """What a channel may sell (and is shown) at a store: the store's available less the channel's safety
    stock, and, when the channel has an allocation, no more than what is left of it."""
    figure = available(on_hand, reserved, safety, channel_safety)
    if allocation is None:
        return figure
    left = allocation.allowance(on_hand - safety) - channel_reserved - channel_safety
    return max(min(figure, left), 0)


def within_share(channel_reserved: Any, qty: Any, channel_safety: int, pool: Any, allocation: Allocation) -> Any:
    """Whether the channel may hold `qty` more: `channel_figure`'s allocation part, as a condition on ints or
    SQL columns alike (no division: x <= floor(pool * share / 100) is 100 x <= pool * share), so the
    conditional UPDATE that counts a channel's units applies this very rule."""
    wanted = channel_reserved + qty + channel_safety
    share = allocation.share if allocation.listed else 0          # not listed: nothing to sell
    fits = wanted * 100 <= pool * share
    # `&` is `and` on bools and AND on SQL expressions.
    return fits if allocation.cap is None else fits & (wanted <= allocation.cap)


def can_take(on_hand: Any, reserved: Any, safety: Any, qty: Any) -> Any:
    """Whether `qty` more may be reserved after `safety`. Works on ints and on SQL columns alike, so the
    conditional UPDATE that reserves applies this very rule."""
    return on_hand - reserved - safety >= qty


def reserved_after_release(reserved: int, qty: int) -> int:
    """A location's reserved units once `qty` of them are let go (released, committed, short-picked): never
    below 0."""
    return max(reserved - qty, 0)


def hold_is_backed(on_hand: int, reserved: int, safety: int) -> bool:
    """A flash sale's hold is still there to draw from: a till did not sell the held units."""
    return on_hand - reserved - safety >= 0


def newer_than_count(occurred_at: datetime, last_counted_at: datetime | None) -> bool:
    """A change (or a count) counts only if newer than the last count held: an older one is inside it."""
    return last_counted_at is None or occurred_at > last_counted_at


def may_draw(quota: Any, drawn: Any, qty: Any) -> Any:
    """A sale's quota gives `qty` more units. Ints or SQL columns: the ledger's UPDATE applies this rule."""
    return drawn + qty <= quota


def quota_left(quota: int, drawn: int) -> int:
    return max(quota - drawn, 0)


@dataclass(frozen=True, slots=True)
class StockPosition:
    """One SKU at one location, as the ledger holds it."""

    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def available(self) -> int:
        return available(self.on_hand, self.reserved, self.safety_stock)

    def available_to(self, channel_safety: int = 0) -> int:
        """What a channel holding back `channel_safety` may sell here."""
        return available(self.on_hand, self.reserved, self.safety_stock, channel_safety)
