"""Stock arithmetic, written once: what may be sold, which change a count already holds, a quota's draw.

Plain functions over ints (and the same operators over SQL columns, where a statement applies the rule),
so the hot paths keep their tuple loops: a thousand stores per stock query cost no object per row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def available(on_hand: int, reserved: int, safety: int = 0, channel_safety: int = 0) -> int:
    """What a location may sell (never below 0), less what the asking channel holds back on top."""
    return max(max(on_hand - reserved - safety, 0) - channel_safety, 0)


def channel_available(location_available: int, channel_safety: int) -> int:
    """A location's available figure as a channel holding back `channel_safety` may sell it."""
    return max(location_available - channel_safety, 0)


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
