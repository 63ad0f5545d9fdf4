"""`/admin/api/reconciliation/payments`: the ops key runs it; a malformed or future day is a 422, nothing kept."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hub.services import payment_reconciliation
from hub.storage.tables import PaymentReconciliationRun

from .conftest import OPS_KEY

P = "/admin/api/reconciliation/payments"


def _runs(api) -> int:
    with api.ctx.reader() as uow:
        return uow.session.execute(select(func.count()).select_from(PaymentReconciliationRun)).scalar_one()


def test_a_malformed_or_future_day_is_refused_and_nothing_is_kept(api):
    tomorrow = payment_reconciliation.platform_today(api.clock.now) + timedelta(days=1)
    for body in ({"date": "2024-13-01"}, {"date": "2024-5-1"}, {"date": "yesterday"}, {},
                 {"date": tomorrow.isoformat()}, {"date": "2024-05-01", "system": "nobody"}):
        r = api.post(P, body, key=OPS_KEY)
        assert r.status_code == 422, (body, r.get_json())
        assert r.get_json()["error"]
    assert _runs(api) == 0


def test_running_needs_the_ops_key(api):
    assert api.post(P, {"date": "2024-05-01"}).status_code in (401, 403)
    assert api.post(P, {"date": "2024-05-01"}, key=None).status_code == 401
    assert _runs(api) == 0


def test_the_runs_are_listed_and_an_unknown_run_is_404(api):
    assert api.get(P, key=OPS_KEY).get_json() == {"runs": []}
    assert api.get(P + "/999", key=OPS_KEY).status_code == 404
    assert api.get(P + "/abc", key=OPS_KEY).status_code == 404


def test_a_run_id_no_column_holds_is_404(api):
    assert api.get(P + "/" + "9" * 30, key=OPS_KEY).status_code == 404
