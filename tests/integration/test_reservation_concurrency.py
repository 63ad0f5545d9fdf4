"""200 concurrent reservations on 20 units, each attempt on its own PostgreSQL connection."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from hub.services import inventory
from hub.storage.tables import Reservation
from tests.support import count, make_order_row

ROOT = Path(__file__).resolve().parents[2]


def test_200_concurrent_attempts_on_20_units_reserve_exactly_20(pg_ctx):
    ctx = pg_ctx
    with ctx.uow() as uow:
        inventory.apply_count(uow, count("TEA-001", "S001", 20, 0))
        order_ids = [f"RACE{i:03d}" for i in range(200)]
        for oid in order_ids:
            make_order_row(uow, oid)
        uow.commit()
    url = ctx.engine.url.render_as_string(hide_password=False)
    start_at = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.reserve_race", url, str(start_at),
                               ",".join(order_ids[i::4])], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    totals = {"reserved": 0, "refused": 0, "error": 0}
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            for k, v in json.loads(out.strip().splitlines()[-1]).items():
                totals[k] += v
    finally:                # a racer left running after a failure or timeout would hold its connections
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    print(f"concurrency result: {totals}")
    assert totals == {"reserved": 20, "refused": 180, "error": 0}
    with ctx.uow() as uow:
        level = inventory.stock_at(uow.session, ctx.config, "TEA-001", "S001")
        assert (level.on_hand, level.reserved, level.available) == (20, 20, 0)
        assert uow.session.execute(select(func.sum(Reservation.qty))).scalar_one() == 20
