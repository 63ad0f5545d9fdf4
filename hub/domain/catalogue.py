"""What a channel may order: one rule for every way an order arrives (the shop's API, the shop's own
checkout pushed to the hub, a flash sale)."""
from __future__ import annotations

from hub.domain.errors import NotSellable


def check_sellable(line: int, sku: str, active: bool | None, price_fen: int | None, *,
                   priced_by_sale: bool = False) -> None:
    """NotSellable unless the SKU is known (`active` not None), active and priced. A flash sale's order is
    priced by its sale, so the price list need not have the SKU's price yet."""
    if not active:
        raise NotSellable(f"unknown SKU {sku!r}", line, unknown=True)
    if price_fen is None and not priced_by_sale:
        raise NotSellable(f"SKU {sku!r} has no price yet", line, unknown=False)
