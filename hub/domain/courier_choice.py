"""Which courier books a delivery, by the store's rule (`locations[].courier_rule`). Pure: quotes in, a choice out.

- preference: the first courier in the store's `couriers` order that quoted;
- cheapest:   the lowest fee; a tie goes to the earlier courier in the store's order;
- fastest:    the soonest promised pickup (a quote promising none comes after every one that does),
              then the lower fee, then the store's order.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from hub.domain.model import DeliveryQuote

Rule = Literal["preference", "cheapest", "fastest"]
NO_PROMISE = 10**9


def choose(quotes: Sequence[DeliveryQuote], rule: Rule, order: Sequence[str]) -> DeliveryQuote | None:
    """The quote to book among `quotes` (any order), `order` being the store's couriers; None when none quoted."""
    rank = {name: i for i, name in enumerate(order)}
    pool = [q for q in quotes if q.carrier in rank]
    if not pool:
        return None

    def place(q: DeliveryQuote) -> int:
        return rank[q.carrier]

    if rule == "cheapest":
        return min(pool, key=lambda q: (q.fee_fen, place(q)))
    if rule == "fastest":
        return min(pool, key=lambda q: (NO_PROMISE if q.pickup_minutes is None else q.pickup_minutes,
                                        q.fee_fen, place(q)))
    return min(pool, key=place)
