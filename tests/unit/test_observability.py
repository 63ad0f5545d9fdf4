"""Metrics across processes (prometheus_client's multiprocess mode), consumer metrics, and JSON log lines
carrying the work's context with masking unchanged."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from hub import privacy
from hub.logs import JsonFormatter, log_context
from hub.metrics import METRICS, prepare_multiproc_dir

RECORD = """
from hub.metrics import METRICS
METRICS.requests.labels("/api/v1/stock/{{sku}}", "GET", "200").inc({n})
METRICS.connector_seconds.labels("pos", "push_order").observe(0.02)
METRICS.connector_last_success.labels("pos").set({ts})
"""
SCRAPE = """
from hub.metrics import METRICS
print(METRICS.render([]).decode())
"""


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True,
                          cwd=os.getcwd()).stdout


def test_replicas_add_up_in_multiprocess_mode(tmp_path):
    directory = prepare_multiproc_dir(tmp_path / "metrics")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    _run(RECORD.format(n=2, ts=1000), env)            # two replicas of the gateway, one after the other
    _run(RECORD.format(n=3, ts=2000), env)
    text = _run(SCRAPE, env)                          # a third process serves /metrics
    assert 'hub_http_requests_total{method="GET",route="/api/v1/stock/{sku}",status="200"} 5.0' in text
    assert 'hub_connector_call_duration_seconds_count{operation="push_order",system="pos"} 2.0' in text
    assert 'hub_connector_last_success_timestamp_seconds{system="pos"} 2000.0' in text   # the newest wins
    assert "process_resident_memory_bytes" in text
    (directory / "stale.db").write_bytes(b"")
    assert list(prepare_multiproc_dir(directory).iterdir()) == []     # a new launch starts from zero


def test_consumers_are_timed_and_counted_by_outcome(ctx):
    from hub import consumers
    from hub.events import Probe

    def fails(ctx, uow, data):
        raise RuntimeError("down")

    ok = consumers.Consumer("obs_test.ok", Probe, lambda ctx, uow, data: None, "obs_test")
    failing = consumers.Consumer("obs_test.fails", Probe, fails, "obs_test")

    def value(name: str, **labels: str) -> float:
        return METRICS.registry.get_sample_value(name, labels) or 0

    before = value("hub_consumer_messages_total", consumer="obs_test.ok", outcome="applied")
    consumers.handle_once(ctx, ok, {"id": "e1", "data": {}})
    consumers.handle_once(ctx, ok, {"id": "e1", "data": {}})
    consumers.handle_once(ctx, failing, {"id": "e2", "data": {}}, attempts=2, sleep=lambda s: None)
    assert value("hub_consumer_messages_total", consumer="obs_test.ok", outcome="applied") == before + 1
    assert value("hub_consumer_messages_total", consumer="obs_test.ok", outcome="duplicate") >= 1
    assert value("hub_consumer_failures_total", consumer="obs_test.fails") >= 2
    assert value("hub_dead_letters_parked_events_total", consumer="obs_test.fails") >= 1
    assert value("hub_consumer_duration_seconds_count", consumer="obs_test.ok") >= 2


def test_json_log_lines_carry_the_context_and_stay_masked():
    logger = logging.getLogger("hub.obs_test")
    privacy.install(logger, ["sandbox-secret-key"])
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            self.line = self.format(record)

    handler = Keep()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    try:
        with log_context(consumer="fulfilment.push_pickup", message_id="m-9", order_id="O1"):
            with log_context(system="pos"):
                logger.warning("push for %s failed, buyer 13800138000, key sandbox-secret-key", "O1")
        line = json.loads(handler.line)
        assert line["consumer"] == "fulfilment.push_pickup" and line["message_id"] == "m-9"
        assert line["order_id"] == "O1" and line["system"] == "pos" and line["level"] == "WARNING"
        assert "13800138000" not in line["message"] and "138****8000" in line["message"]
        assert "sandbox-secret-key" not in handler.line
        logger.warning("outside")
        assert "consumer" not in json.loads(handler.line)
    finally:
        logger.removeHandler(handler)
