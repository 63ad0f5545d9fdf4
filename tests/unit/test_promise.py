"""The promised time, one rule: paid plus the fulfilment's promise; none unpaid or for a warehouse's parcel."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain.promise import promised_at

PAID = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_each_fulfilment_has_its_promise_from_payment():
    assert promised_at("pickup", PAID, True) == PAID + timedelta(minutes=30)
    assert promised_at("delivery", PAID, True) == PAID + timedelta(minutes=60)
    assert promised_at("express", PAID, True) == PAID + timedelta(hours=2)      # a store packs it


def test_no_promise_before_payment_or_for_a_warehouses_parcel():
    assert promised_at("pickup", None, True) is None
    assert promised_at("express", PAID, False) is None
