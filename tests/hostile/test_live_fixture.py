"""The ring's own fixture: requests really run at once against PostgreSQL."""
from __future__ import annotations

from tests.hostile.conftest import Live, at_once


def test_concurrent_requests_are_served_over_http(live: Live) -> None:
    answers = at_once(*[lambda: live.get("/api/v1/stock/TEA-001") for _ in range(8)])
    assert [a.status_code for a in answers] == [200] * 8
