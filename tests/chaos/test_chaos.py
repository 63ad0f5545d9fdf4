"""The chaos suite's short variant, in every `make test`: `hub up` with two replicas of the consumers
under load while each service is killed with SIGKILL and the database refuses connections.

RabbitMQ is stopped only when HUB_CHAOS_BROKER_STOP=1 (it stops it for the whole machine, and
other test runs may share this one); `make chaos` runs the full suite with the broker stop."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import BROKER_URL, PG_URL
from workers.launcher import ROOT


def test_short_chaos_run_loses_nothing_doubles_nothing_parks_nothing():
    if not (PG_URL and BROKER_URL):
        pytest.skip("PostgreSQL and RabbitMQ not configured: set HUB_TEST_DATABASE_URL and HUB_TEST_BROKER_URL")
    args = ["--sales", "240", "--orders", "24", "--deliveries", "24", "--duration", "15", "--db-outage", "6",
            "--converge-timeout", "240"]
    if os.environ.get("HUB_CHAOS_BROKER_STOP") != "1":
        args.append("--no-broker-stop")
    env = {**os.environ, "HUB_CHAOS_DATABASE_URL": PG_URL, "HUB_CHAOS_BROKER_URL": BROKER_URL,
           "HUB_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "tests.chaos", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    report = run.stdout[run.stdout.find("events:"):]
    print(report)
    assert run.returncode == 0, report or run.stderr[-3000:]
    assert "lost: 0  doubled: 0  dead letters: 0" in report
    assert report.count("kill -9") == 6 and "database refusing connections" in report
    booked = next(line for line in report.splitlines() if "every paid delivery booked once" in line)
    assert "[ok]" in booked and all(f"{c} 8" in booked for c in ("local_delivery", "sf_same_city", "shansong"))
