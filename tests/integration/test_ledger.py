"""The stock ledger on SQLite and PostgreSQL: idempotent deltas, newest-count-wins, reservations."""
from __future__ import annotations

from datetime import timedelta

import pytest

from hub.domain.errors import BadInput, InsufficientStock, UnknownLocation, UnknownSku
from hub.domain.model import StockDelta
from hub.services import inventory
from hub.storage.tables import StockMovement
from tests.support import at, count


def delta(sku: str, loc: str, qty: int, minutes: float, ext: str, source: str = "pos") -> StockDelta:
    return StockDelta(source, ext, sku, loc, qty, at(minutes), "sale" if qty < 0 else "receipt")


def apply(ctx, msg):
    with ctx.uow() as uow:
        fn = inventory.apply_count if hasattr(msg, "counted_at") else inventory.apply_delta
        result = fn(uow, msg)
        uow.commit()
        return result


def on_hand(ctx, sku="TEA-001", loc="S001"):
    with ctx.uow() as uow:
        return inventory.stock_at(uow.session, ctx.config, sku, loc).on_hand


def test_delta_applies_once_per_source_and_external_id(ctx):
    apply(ctx, count("TEA-001", "S001", 10, 0))
    first = apply(ctx, delta("TEA-001", "S001", -2, 5, "R1"))
    again = apply(ctx, delta("TEA-001", "S001", -2, 5, "R1"))
    other_source = apply(ctx, delta("TEA-001", "S001", -2, 5, "R1", source="erp"))
    assert (first.applied, first.duplicate) == (True, False)
    assert (again.applied, again.duplicate) == (False, True)
    assert other_source.applied
    assert on_hand(ctx) == 6


def test_count_applies_only_if_newer_and_later_deltas_still_count(ctx):
    apply(ctx, delta("TEA-001", "S001", 5, 10, "GR1"))        # receipt after the count below
    apply(ctx, delta("TEA-001", "S001", -1, 1, "R-early"))    # before the count: inside it
    result = apply(ctx, count("TEA-001", "S001", 20, 5))
    assert result.applied and on_hand(ctx) == 25
    stale = apply(ctx, count("TEA-001", "S001", 3, 4))
    assert not stale.applied and stale.reason == "older than the last count"
    late = apply(ctx, delta("TEA-001", "S001", -4, 2, "R-late"))   # arrives late, happened before the count
    assert not late.applied and on_hand(ctx) == 25
    apply(ctx, delta("TEA-001", "S001", -3, 6, "R2"))
    assert on_hand(ctx) == 22


def test_every_change_is_a_ledger_row_with_source_and_external_id(ctx):
    apply(ctx, count("TEA-001", "S001", 10, 0, ext="C1"))
    apply(ctx, delta("TEA-001", "S001", -2, 5, "R1"))
    apply(ctx, delta("TEA-001", "S001", -2, 5, "R1"))
    with ctx.uow() as uow:
        rows = uow.session.query(StockMovement).order_by(StockMovement.id).all()
        assert [(r.kind, r.source, r.external_id, r.qty, r.on_hand_after) for r in rows] == [
            ("count", "test", "C1", 10, 10), ("delta", "pos", "R1", -2, 8)]


def test_bad_input_changes_nothing(ctx):
    apply(ctx, count("TEA-001", "S001", 10, 0))
    for bad, err in [(delta("NOPE", "S001", -1, 1, "X1"), UnknownSku), (delta("TEA-001", "S999", -1, 1, "X2"),
                     UnknownLocation), (delta("TEA-001", "S001", 0, 1, "X3"), BadInput),
                     (count("TEA-001", "S001", -5, 9), BadInput)]:
        with pytest.raises(err):
            apply(ctx, bad)
    assert on_hand(ctx) == 10
    with ctx.uow() as uow:
        assert uow.session.query(StockMovement).count() == 1


def reserve(ctx, order_id, allocations, ttl=None):
    with ctx.uow() as uow:
        from tests.support import make_order_row
        make_order_row(uow, order_id)
        rows = inventory.reserve(uow, ctx.config, order_id, allocations, ttl)
        uow.commit()
        return rows


def test_reservation_is_all_or_nothing_and_lists_every_short_line(ctx):
    apply(ctx, count("TEA-001", "S001", 5, 0))
    apply(ctx, count("CUP-002", "S001", 1, 0))
    with pytest.raises(InsufficientStock) as exc:
        reserve(ctx, "O1", [("TEA-001", "S001", 2), ("CUP-002", "S001", 3), ("POT-003", "S001", 1)])
    assert exc.value.short == [
        {"sku": "CUP-002", "location_id": "S001", "wanted": 3, "available": 1},
        {"sku": "POT-003", "location_id": "S001", "wanted": 1, "available": 0},
    ]
    with ctx.uow() as uow:
        assert inventory.stock_at(uow.session, ctx.config, "TEA-001", "S001").reserved == 0


def test_safety_stock_is_held_back(ctx):
    # S003 keeps 1 unit of safety stock.
    apply(ctx, count("TEA-001", "S003", 3, 0))
    with pytest.raises(InsufficientStock):
        reserve(ctx, "O1", [("TEA-001", "S003", 3)])
    reserve(ctx, "O2", [("TEA-001", "S003", 2)])
    with ctx.uow() as uow:
        level = inventory.stock_at(uow.session, ctx.config, "TEA-001", "S003")
    assert (level.on_hand, level.reserved, level.safety_stock, level.available) == (3, 2, 1, 0)


def test_release_commit_and_return(ctx):
    apply(ctx, count("TEA-001", "S001", 10, 0))
    reserve(ctx, "O1", [("TEA-001", "S001", 4)], ttl=timedelta(minutes=15))
    reserve(ctx, "O2", [("TEA-001", "S001", 3)])
    with ctx.uow() as uow:
        assert inventory.release(uow, "O1", "cancelled") == 4
        assert inventory.release(uow, "O1", "again") == 0          # nothing left to release
        assert inventory.commit(uow, "O2") == 3
        uow.commit()
    with ctx.uow() as uow:
        level = inventory.stock_at(uow.session, ctx.config, "TEA-001", "S001")
        assert (level.on_hand, level.reserved) == (7, 0)
        assert inventory.return_to_stock(uow, "O2") == 3
        uow.commit()
    assert on_hand(ctx) == 10


def test_stock_changes_emit_events_in_the_same_transaction(ctx):
    from hub.storage.tables import OutboxMessage
    apply(ctx, count("TEA-001", "S001", 10, 0))
    with ctx.uow() as uow:
        inventory.apply_delta(uow, delta("TEA-001", "S001", -1, 1, "R9"))
        # not committed: rolled back with the change
    with ctx.uow() as uow:
        types = [m.event_type for m in uow.session.query(OutboxMessage)]
    assert types == ["stock.changed"]
    assert on_hand(ctx) == 10
