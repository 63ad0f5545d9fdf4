"""`/admin/api/charts`: the console's last hour a minute at a time — events written, published, consumed and
parked, the outbox backlog read back from now, and each connector's calls, errors and latency."""
from __future__ import annotations

from datetime import timedelta

from hub import handlers
from hub.connector_health import ConnectorHealth
from hub.metered import Metered
from hub.storage.tables import DeadLetter, OutboxMessage, ProcessedMessage
from tests.support import T0

from .conftest import CHANNEL_KEY, OPS_KEY
from .test_console import Shop


def ago(**kw: float):
    return T0 - timedelta(**kw)


def test_flow_and_backlog_a_minute_at_a_time_from_the_database(api):
    def event(n: str, written, sent=None) -> OutboxMessage:
        return OutboxMessage(message_id=n, event_type="stock.changed", payload={}, created_at=written, sent_at=sent)

    with api.ctx.uow() as uow:
        uow.session.add_all([
            event("a1", ago(seconds=90), ago(seconds=30)), event("a2", ago(seconds=90)), event("a3", ago(seconds=90)),
            event("b1", ago(minutes=10.5)), event("b2", ago(minutes=10.5)),
            event("old-sent", ago(hours=2), ago(hours=2)), event("old-waiting", ago(hours=2)),
            ProcessedMessage(consumer=handlers.STOCK_TO_SHOP.name, message_id="a1", processed_at=ago(seconds=5)),
            DeadLetter(target="fulfilment.push_pos", message_id="x", payload={}, error="boom", attempts=3,
                       first_failed_at=ago(minutes=30.5), last_failed_at=ago(minutes=30.5), status="parked")])
        uow.commit()
    r = api.get("/admin/api/charts", key=OPS_KEY)
    assert r.status_code == 200
    c = r.json
    assert len(c["minutes"]) == 60 and c["minutes"][-1].startswith("2026-11-25T10:00:00+08:00")   # the last ends now
    flow = c["flow"]
    assert [i for i, n in enumerate(flow["written"]) if n] == [49, 58]
    assert (flow["written"][49], flow["written"][58], sum(flow["written"])) == (2, 3, 5)       # the 2-hour-old: out
    assert flow["published"][59] == 1 and sum(flow["published"]) == 1
    assert flow["consumed"][59] == 1 and sum(flow["consumed"]) == 1
    assert flow["parked"][29] == 1 and sum(flow["parked"]) == 1
    backlog = c["backlog"]["outbox_unsent"]
    # the old one waits all hour; b1, b2 from minute 49; a1-a3 in minute 58, a1 published in minute 59
    assert backlog[:49] == [1] * 49 and backlog[49:58] == [3] * 9 and backlog[58:] == [6, 5]
    assert api.get("/admin/api/charts", key=CHANNEL_KEY).status_code == 401


def test_connector_points_per_snapshot_interval_with_rates_per_minute(api):
    clock = [1000.0]
    api.deps.health = ConnectorHealth(api.deps.metrics, clock=lambda: clock[0])
    shop = Shop()
    metered = Metered("wechat_shop", shop, api.deps.metrics)

    def calls(ok: int, failed: int) -> None:
        shop.fail = False
        for _ in range(ok):
            metered.update_store_stock("TEA-001", "S001", 3)
        shop.fail = True
        for _ in range(failed):
            try:
                metered.update_store_stock("TEA-001", "S001", 3)
            except RuntimeError:
                pass

    calls(ok=3, failed=1)
    clock[0] += 60
    assert api.get("/admin/api/charts", key=OPS_KEY).status_code == 200      # the minute's snapshot
    calls(ok=0, failed=2)
    clock[0] += 30                                                           # half a minute under way
    rows = {row["system"]: row["points"] for row in api.get("/admin/api/charts", key=OPS_KEY).json["connectors"]}
    first, now = rows["wechat_shop"]
    assert (first["calls_per_min"], first["errors_per_min"], first["error_rate"]) == (4, 1, 0.25)
    assert first["latency_ms_avg"] is not None and first["at"].endswith("+08:00")
    assert (now["calls_per_min"], now["errors_per_min"], now["error_rate"]) == (4, 4, 1.0)   # 2 in 30 s
    assert [(p["calls_per_min"], p["error_rate"], p["latency_ms_avg"]) for p in rows["crm"]] == [(0, None, None)] * 2
