"""Receipts from a store's till, one or hundreds at a time, applied to the ledger in one transaction.

The same rules as `inventory.apply_delta` (once per source + receipt + SKU + location; a sale older
than the last count is recorded but already inside that count), written as a few Core statements
for the whole batch instead of some seven ORM round trips per line: look up the SKUs, create missing
stock rows, lock the rows in SKU order (two batches never deadlock), find receipts already held,
insert the new ledger rows, update each stock row once, and emit one `stock.changed` per SKU.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.config import HubConfig
from hub.domain.errors import BadInput, UnknownLocation
from hub.domain.limits import INT_MIN, fits_int, is_ahead
from hub.domain.stock import newer_than_count
from hub.services.inventory import stock_changed
from hub.storage import raw
from hub.storage.in_list import ByDialect, in_list
from hub.storage.tables import SkuRow, StockLevel, StockMovement, utcnow
from hub.storage.uow import UnitOfWork, insert_rows, update_rows


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    sold_at: datetime
    lines: Sequence[tuple[str, int]]          # (sku, units sold), positive


class ReceiptConflict(BadInput):
    """One receipt number, two different receipts in one batch."""

    code = "receipt_conflict"

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


@dataclass
class ReceiptOutcome:
    receipt_id: str
    status: str                               # applied | duplicate | refused
    reason: str = ""
    code: str = ""              # why it was refused: unknown_sku | time_ahead | too_large | receipt_conflict
    lines: list[dict[str, Any]] = field(default_factory=list)


def _insert(conn: Any, table: Any) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def _merged(lines: Sequence[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for sku, qty in lines:
        out[sku] = out.get(sku, 0) + qty
    return out


def _refuse_reused_receipt_ids(receipts: Sequence[Receipt]) -> None:
    """A receipt number sent twice in one batch with other lines or another time is two different sales under
    one key: which one is the receipt? Refused (nothing applied) rather than dropping one as a duplicate.
    The same receipt sent twice unchanged is a repeat: the second is reported as a duplicate."""
    first: dict[str, tuple[datetime, dict[str, int]]] = {}
    for i, r in enumerate(receipts):
        body = (r.sold_at, _merged(r.lines))
        if first.setdefault(r.receipt_id, body) != body:
            raise ReceiptConflict(f"receipt {r.receipt_id!r} is in this batch twice with different lines or "
                                  "times: send each receipt once, with all its lines", index=i)


# Core tables, not ORM entities: the statements below skip the ORM's per-statement bookkeeping.
LEVELS, MOVES, SKUS = StockLevel.__table__, StockMovement.__table__, SkuRow.__table__


# Built once with bound parameters: building and cache-keying a statement per request cost a tenth of a sale.
LOCK = ByDialect(lambda d: select(LEVELS.c.sku, LEVELS.c.on_hand, LEVELS.c.last_counted_at)
                 .where(LEVELS.c.location_id == bindparam("store"), in_list(LEVELS.c.sku, "skus", d))
                 .order_by(LEVELS.c.sku).with_for_update())
KNOWN = ByDialect(lambda d: select(SKUS.c.code).where(in_list(SKUS.c.code, "skus", d)))
HELD = ByDialect(lambda d: select(MOVES.c.external_id, MOVES.c.sku)
                 .where(MOVES.c.source == bindparam("source"), MOVES.c.location_id == bindparam("store"),
                        in_list(MOVES.c.external_id, "receipts", d)))


# What a held receipt said (only looked at when a receipt id comes again): its lines and its time.
HELD_LINES = ByDialect(lambda d: select(MOVES.c.external_id, MOVES.c.sku, MOVES.c.qty, MOVES.c.occurred_at)
                       .where(MOVES.c.source == bindparam("source"), MOVES.c.location_id == bindparam("store"),
                              MOVES.c.kind == "delta", in_list(MOVES.c.external_id, "receipts", d)))


def _refuse_other_receipts_under_held_ids(conn: Any, source: str, store_id: str,
                                          good: list[tuple[ReceiptOutcome, Receipt, dict[str, int]]],
                                          held: set[Any]) -> list[tuple[ReceiptOutcome, Receipt, dict[str, int]]]:
    """A receipt id the ledger holds, sent again with other lines or another time, is another sale under
    one key: refused (`receipt_conflict`), never applied per SKU beside the first. The same receipt again
    is a retry: it goes on, and its lines are reported as duplicates."""
    again = sorted({receipt_id for receipt_id, _ in held})
    if not again:
        return good
    said: dict[str, tuple[dict[str, int], set[datetime]]] = {}
    for receipt_id, sku, qty, occurred_at in raw.execute(conn, HELD_LINES.on(conn),
                                                         {"source": source, "store": store_id, "receipts": again}):
        lines, times = said.setdefault(receipt_id, ({}, set()))
        lines[sku] = lines.get(sku, 0) - qty
        times.add(occurred_at)
    kept = []
    for outcome, r, merged in good:
        first = said.get(r.receipt_id)
        if first is not None and first != (merged, {r.sold_at}):
            outcome.code = ReceiptConflict.code
            outcome.reason = (f"receipt {r.receipt_id!r} was received before with other lines or another time: "
                              "a receipt id names one sale; send a new receipt for another")
            continue
        kept.append((outcome, r, merged))
    return kept


def _lock_levels(conn: Any, store_id: str, skus: list[str]) -> dict[str, Any]:
    """The stock rows of these SKUs here, locked in SKU order (so two batches never deadlock)."""
    return {row.sku: row for row in raw.execute(conn, LOCK.on(conn), {"store": store_id, "skus": skus})}


def apply_receipts(uow: UnitOfWork, cfg: HubConfig, store_id: str, receipts: Sequence[Receipt],
                   now: datetime | None = None) -> list[ReceiptOutcome]:
    """Apply each receipt once; a receipt with an unknown SKU or a time from the future is refused alone."""
    now = now or utcnow()
    source = f"pos:{store_id}"
    if cfg.location(store_id) is None:            # the locations table mirrors the config (bootstrap)
        raise UnknownLocation(f"unknown location {store_id!r}")
    conn = uow.connection                          # Core statements only: no ORM session is made
    wanted = sorted({sku for r in receipts for sku, _ in r.lines})
    # Lock first: a SKU with a stock row here is known (its foreign key says so); only the others are
    # looked up in the product master, so the usual sale costs no look-up of its own.
    levels = _lock_levels(conn, store_id, wanted) if wanted else {}
    unheld = [sku for sku in wanted if sku not in levels]
    known = set(levels) | (set(raw.execute(conn, KNOWN.on(conn), {"skus": unheld}).scalars()) if unheld else set())
    _refuse_reused_receipt_ids(receipts)
    outcomes: list[ReceiptOutcome] = []
    good: list[tuple[ReceiptOutcome, Receipt, dict[str, int]]] = []
    seen: set[str] = set()
    for r in receipts:
        outcome = ReceiptOutcome(r.receipt_id, "refused")
        outcomes.append(outcome)
        unknown = sorted({sku for sku, _ in r.lines} - known)
        if unknown:
            outcome.code, outcome.reason = "unknown_sku", f"unknown SKU {unknown[0]!r}"
        elif is_ahead(r.sold_at, now):          # a till with a wrong clock must not freeze the ledger's order
            outcome.code, outcome.reason = "time_ahead", "sold_at is more than 5 minutes ahead of the hub's clock"
        elif r.receipt_id in seen:
            outcome.status, outcome.reason = "duplicate", "twice in this batch"
        else:
            seen.add(r.receipt_id)
            good.append((outcome, r, _merged(r.lines)))
    if not good:
        return outcomes
    skus = sorted({sku for _, _, merged in good for sku in merged})
    missing = [s for s in skus if s not in levels]
    if missing:                                   # a SKU never held here before: its row starts at 0
        conn.execute(_insert(conn, LEVELS).values(
            [{"sku": s, "location_id": store_id, "on_hand": 0, "reserved": 0, "updated_at": now} for s in missing])
            .on_conflict_do_nothing())
        levels = _lock_levels(conn, store_id, skus)
    held = set(raw.execute(conn, HELD.on(conn), {"source": source, "store": store_id,
                                        "receipts": [r.receipt_id for _, r, _ in good]}).all())
    good = _refuse_other_receipts_under_held_ids(conn, source, store_id, good, held)
    on_hand = {s: levels[s].on_hand for s in skus}
    ledger: list[dict[str, Any]] = []
    moved: set[str] = set()
    for outcome, r, merged in good:
        if not all(fits_int(on_hand[sku] - qty) for sku, qty in merged.items() if (r.receipt_id, sku) not in held):
            # on-hand is an INTEGER column: a receipt that would take it past -2^31 is refused, not a 500
            outcome.code, outcome.reason = "too_large", f"the sale would take on-hand below {INT_MIN}"
            continue
        fresh = False
        for sku, qty in sorted(merged.items()):
            if (r.receipt_id, sku) in held:
                outcome.lines.append({"sku": sku, "qty": -qty, "applied": False, "duplicate": True,
                                      "on_hand": on_hand[sku], "note": "duplicate"})
                continue
            fresh = True
            counts = newer_than_count(r.sold_at, levels[sku].last_counted_at)
            if counts:
                on_hand[sku] -= qty
                moved.add(sku)
            ledger.append({"sku": sku, "location_id": store_id, "kind": "delta", "qty": -qty, "source": source,
                           "external_id": r.receipt_id, "occurred_at": r.sold_at, "recorded_at": now,
                           "applied": counts, "on_hand_after": on_hand[sku], "note": "sale"})
            outcome.lines.append({"sku": sku, "qty": -qty, "applied": counts, "duplicate": False,
                                  "on_hand": on_hand[sku], "note": "" if counts else "older than the last count"})
        outcome.status = "applied" if fresh else "duplicate"
    # Sent with the transaction's events at commit: one statement on PostgreSQL for a sale or a few.
    insert_rows(uow, MOVES, ledger)
    update_rows(uow, LEVELS, ("sku", "location_id"),
                [{"sku": s, "location_id": store_id, "on_hand": on_hand[s], "updated_at": now} for s in sorted(moved)])
    if moved:
        for sku in sorted(moved):
            stock_changed(uow, sku, store_id, f"{source}:sale")
    return outcomes

