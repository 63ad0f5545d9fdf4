"""What a courier callback becomes once the courier's query has answered (pure: no I/O)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain.model import CourierState, TrackingEvent, TrackingStatus
from hub.services.courier_claims import confirmed

T = TrackingStatus
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def claim(status: T, at: datetime, **kw) -> TrackingEvent:
    return TrackingEvent("local_delivery", "Dada1", status, at, detail="forged words", rider_name="假骑士",
                         rider_phone="13000000000", order_ref="O-1", **kw)


def truth(status: T, at: datetime | None = None) -> CourierState:
    return CourierState("local_delivery", "O-1", status, at, "张骑士", "13911112222", 600)


def test_only_the_querys_status_and_rider_are_applied():
    accepted_at = NOW - timedelta(minutes=5)
    report = confirmed(claim(T.CANCELLED, NOW - timedelta(minutes=1)), truth(T.RIDER_ASSIGNED, accepted_at), NOW)
    assert (report.status, report.at) == (T.RIDER_ASSIGNED, NOW - timedelta(minutes=5))
    assert (report.rider_name, report.rider_phone, report.detail) == ("张骑士", "13911112222", "")


def test_a_future_time_is_capped_at_now():
    report = confirmed(claim(T.DELIVERED, NOW + timedelta(days=3650)), truth(T.DELIVERED), NOW)
    assert report.status == T.DELIVERED and report.at == NOW
    assert confirmed(claim(T.COLLECTED, NOW), truth(T.COLLECTED, NOW + timedelta(hours=1)), NOW).at == NOW


def test_an_agreeing_claim_keeps_its_time_and_each_step_has_one_id():
    at = NOW - timedelta(minutes=2)
    first = confirmed(claim(T.RIDER_AT_STORE, at), truth(T.RIDER_AT_STORE), NOW)
    again = confirmed(claim(T.RIDER_AT_STORE, at), truth(T.RIDER_AT_STORE), NOW)
    assert first.at == at and first.external_id == again.external_id


def test_a_delivery_the_courier_does_not_hold_confirms_nothing():
    assert confirmed(claim(T.DELIVERED, NOW), None, NOW) is None
