"""`hub reconcile orders`: an operator pulls every channel's orders now (after an outage), against the running
WeChat shop and Meituan simulators; an order whose pushes were all lost is taken, and the run says so."""
from __future__ import annotations

from hub.config import DEFAULT_CONFIG_PATH
from hub.services import orders
from tests.support import always_open, config_env


def test_hub_reconcile_orders_takes_what_the_pushes_missed_at_every_channel(flow, monkeypatch, capsys, tmp_path):
    from workers.cli import main

    # The command reads its own config: without the stores' opening hours, or after 22:00 in Shanghai the
    # platform's order for a closed store is refused and the test fails by the clock.
    config = tmp_path / "config.yaml"
    config.write_text(always_open(DEFAULT_CONFIG_PATH.read_text()))
    monkeypatch.setenv("HUB_CONFIG", str(config))

    for name, value in {**config_env(), **flow.sandbox.env(),
                        "HUB_DATABASE_URL": flow.ctx.config.hub.database_url}.items():
        monkeypatch.setenv(name, value)
    flow.sandbox.wechat_shop.seed_order("3705400000000000001", [("TEA-001", 1, 1200)], status=20,
                                        fulfillment="pickup", store_id="S001")
    flow.sandbox.meituan.seed_order("7001", [("TEA-001", 1, 1500)], "S002", status=2, pick_type=1)
    assert main(["reconcile", "orders"]) == 0
    out = capsys.readouterr().out
    assert "wechat_shop (wechat_shop): 1 listed, 1 the pushes missed" in out
    assert "meituan (meituan): 1 listed, 1 the pushes missed" in out
    assert main(["reconcile", "orders"]) == 0                  # again: listed, nothing missed
    assert "wechat_shop (wechat_shop): 1 listed, 0 the pushes missed" in capsys.readouterr().out
    with flow.ctx.uow() as uow:
        assert orders.find_by_idempotency(uow, "wechat_shop", "wechat_shop:3705400000000000001").status == "allocated"
        assert orders.find_by_idempotency(uow, "meituan", "meituan:7001").location_id == "S002"
