"""The flash-sale admission gate of embedded mode (the port is `hub.ports.AdmissionGate`).

A rush of attempts is answered here, without the order database: quota left, the buyer's limit,
the buyer's pace. An admitted attempt holds a unit until its order is placed (or fails and gives it
back); a cancelled or expired order gives its unit back once, by the attempt's key. Production uses
the Redis gate (`connectors/redis_gate.py`), shared by every gateway replica; both pass the same
tests (`tests/integration/test_flash_gate.py`).
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.domain.flash_sale import GateState, SaleTerms, Verdict


@dataclass
class _Sale:
    terms: SaleTerms
    left: int
    ended: bool = False
    by_buyer: dict[str, int] = field(default_factory=dict)
    held: dict[str, tuple[str, int]] = field(default_factory=dict)      # attempt -> (buyer, qty)
    last_try: dict[str, int] = field(default_factory=dict)              # buyer -> epoch ms


class MemoryGate:
    """The gate of embedded mode: one process, so a lock around plain dicts is the atomic script."""

    def __init__(self) -> None:
        self._sales: dict[str, _Sale] = {}
        self._lock = threading.Lock()

    def arm(self, terms: SaleTerms) -> None:
        with self._lock:
            self._sales[terms.sale_id] = _Sale(terms, terms.quota)

    def restore(self, terms: SaleTerms, held: Mapping[str, tuple[str, int]], ended: bool = False) -> bool:
        """Arm a sale the gate has lost (a restart) with what the ledger holds; a gate that knows it is kept."""
        with self._lock:
            if terms.sale_id in self._sales:
                return False
            sale = _Sale(terms, terms.quota - sum(qty for _, qty in held.values()), ended, held=dict(held))
            for buyer, qty in held.values():
                sale.by_buyer[buyer] = sale.by_buyer.get(buyer, 0) + qty
            self._sales[terms.sale_id] = sale
            return True

    def admit(self, sale_id: str, attempt: str, buyer: str, qty: int, now_ms: int) -> Verdict:
        with self._lock:
            sale = self._sales.get(sale_id)
            if sale is None:
                return Verdict.UNKNOWN
            t = sale.terms
            if sale.ended or now_ms >= t.ends_ms:
                return Verdict.ENDED
            if now_ms < t.starts_ms:
                return Verdict.NOT_STARTED
            if attempt in sale.held:        # the same attempt only with the same buyer and qty (issue 19)
                return Verdict.AGAIN if sale.held[attempt] == (buyer, qty) else Verdict.CONFLICT
            if sale.left < qty:
                return Verdict.SOLD_OUT
            last = sale.last_try.get(buyer)
            if t.min_interval_ms > 0:
                if last is not None and now_ms - last < t.min_interval_ms:
                    return Verdict.TOO_FAST
                sale.last_try[buyer] = now_ms
            if sale.by_buyer.get(buyer, 0) + qty > t.per_buyer_limit:
                return Verdict.OVER_LIMIT
            sale.left -= qty
            sale.by_buyer[buyer] = sale.by_buyer.get(buyer, 0) + qty
            sale.held[attempt] = (buyer, qty)
            return Verdict.ADMITTED

    def give_back(self, sale_id: str, attempt: str) -> int:
        with self._lock:
            sale = self._sales.get(sale_id)
            if sale is None or attempt not in sale.held:
                return 0
            buyer, qty = sale.held.pop(attempt)
            sale.left += qty
            sale.by_buyer[buyer] -= qty
            return qty

    def end(self, sale_id: str) -> None:
        with self._lock:
            if sale_id in self._sales:
                self._sales[sale_id].ended = True

    def state(self, sale_id: str) -> GateState | None:
        with self._lock:
            sale = self._sales.get(sale_id)
            if sale is None:
                return None
            return GateState(sale.terms.quota, sale.left, {k: q for k, (_, q) in sale.held.items()}, sale.ended)
