"""Quotes from a store's couriers, asked in parallel with a deadline (threads; no transaction is open).

A courier that fails or answers after the deadline gives no quote; what each did is returned beside the
quotes, so the booking flow can say why nobody quoted. The preference rule asks one courier at a time in
the store's order (the first that quotes is the one booked: the others need not be asked).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from hub.config import LocationConfig
from hub.domain.model import DeliveryQuote, OrderSnapshot
from hub.ports import ConnectorError, LocalCourier

log = logging.getLogger(__name__)


@dataclass
class Asked:
    quotes: list[DeliveryQuote] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)   # courier -> what it raised (or a timeout)


def ask(couriers: Sequence[LocalCourier], order: OrderSnapshot, store: LocationConfig,
        callback_for: Callable[[str], str], deadline_s: float, *, one_by_one: bool = False) -> Asked:
    """Quotes for `order` from `couriers`: all at once within `deadline_s`, or (`one_by_one`) until one quotes."""
    asked = Asked()
    if one_by_one:
        for courier in couriers:
            try:
                asked.quotes.append(courier.quote(order, store, callback_for(courier.name)))
                return asked
            except ConnectorError as exc:
                asked.failures[courier.name] = exc
        return asked
    pool = ThreadPoolExecutor(max_workers=max(len(couriers), 1), thread_name_prefix="quote")
    try:
        futures = {pool.submit(c.quote, order, store, callback_for(c.name)): c.name for c in couriers}
        done, late = wait(futures, timeout=deadline_s)
        for future in done:
            name = futures[future]
            try:
                asked.quotes.append(future.result())
            except ConnectorError as exc:
                asked.failures[name] = exc
        for future in late:
            asked.failures[futures[future]] = TimeoutError(f"no quote within {deadline_s}s")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)      # a late answer is dropped, never waited for
    if asked.failures:
        log.info("quotes for %s: %s gave none (%s)", order.order_id, ", ".join(sorted(asked.failures)),
                 "; ".join(f"{k}: {v}" for k, v in sorted(asked.failures.items())))
    return asked
