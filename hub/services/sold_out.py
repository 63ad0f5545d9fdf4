"""The sold-out cache's use (`domain/sold_out.py`): a pickup order refused without the order database, what
the ledger said noted for the next attempts, and channel sync's figures keeping it true."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hub.config import HubConfig
from hub.domain import sold_out
from hub.domain.errors import InsufficientStock
from hub.ports import SoldOutCache


def placed_key(channel: str, idempotency_key: str) -> str:
    return f"{channel}:{idempotency_key}"


def check(cache: SoldOutCache, cfg: HubConfig, channel: str, channel_safety: int, idempotency_key: str,
          store_id: str, lines: Sequence[tuple[str, int]],
          store_refusal: Callable[[], None] | None = None) -> bool:
    """Refuse (InsufficientStock, as the ledger would) a pickup order whose store the cache knows to be short of a
    line; otherwise note that this key goes to the ledger, so its retries are never refused here.
    `store_refusal` raises what routing would before stock as far as config says (an unknown store, one without
    pickup, one closed: NoRoute), asked only when the cache would refuse, so the cached answer does not
    contradict the ledger's there. True when the cache had not seen the key (a first attempt, most likely: the
    caller may skip the order's look-up by key and leave a duplicate to the key's unique constraint)."""
    if not cfg.hub.sold_out_ttl_ms:
        return False
    key = placed_key(channel, idempotency_key)
    known, placed = cache.lookup(sorted({(store_id, sku) for sku, _ in lines}), key)
    if not placed and known and (short := sold_out.short_lines(lines, store_id, known, channel_safety)):
        if store_refusal is not None:
            store_refusal()
        raise InsufficientStock(short)
    if not placed:
        cache.placed(key)
    return not placed


def note_refusal(cache: SoldOutCache, cfg: HubConfig, exc: InsufficientStock, store_id: str,
                 channel_safety: int) -> None:
    """The ledger refused a pickup order: its short lines' figures spare the next attempts the database."""
    if not cfg.hub.sold_out_ttl_ms:
        return
    cache.note({(store_id, line["sku"]): sold_out.figure_from_refusal(int(line["available"]), channel_safety)
                for line in exc.short if line.get("location_id") == store_id and "available" in line},
               ttl_ms=cfg.hub.sold_out_ttl_ms)


def note_figures(cache: SoldOutCache, cfg: HubConfig, figures: Mapping[tuple[str, str], int]) -> None:
    """Channel sync's figures per (sku, store) as it read them: low ones kept, the others forgotten (stock came
    back: a restock, a cancel, an expiry)."""
    if not cfg.hub.sold_out_ttl_ms:
        return
    safeties = [c.safety_stock for c in cfg.channels]
    low = {(loc, sku): f for (sku, loc), f in figures.items() if sold_out.is_low(f, safeties)}
    cache.note(low, [(loc, sku) for (sku, loc), f in figures.items() if (loc, sku) not in low],
               ttl_ms=cfg.hub.sold_out_ttl_ms)
