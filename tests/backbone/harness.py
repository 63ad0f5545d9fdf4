"""Start hub services as real processes (`hub run …`) against RabbitMQ and PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kombu import Connection

from tests.support import config_env

ROOT = Path(__file__).resolve().parents[2]


def hub_env(database_url: str, broker_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **config_env(), "HUB_DATABASE_URL": database_url, "HUB_BROKER_URL": broker_url,
           "HUB_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
           "HUB_EXTRA_SERVICES": "tests.backbone.services:EffectService"}
    env.update(extra or {})
    return env


class HubProcess:
    def __init__(self, services: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--no-sandbox", *services], cwd=ROOT,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: b"hub: running" in log_path.read_bytes() or self.proc.poll() is not None, 60,
                 "services to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"hub run exited: {log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def purge_hub_queues(broker_url: str) -> None:
    """Drop every hub queue so a test starts from an empty broker."""
    from workers.broker import event_queues
    from workers.runner import all_service_classes

    from .services import EffectService

    with Connection(broker_url) as conn:
        channel = conn.default_channel
        for q in event_queues([*all_service_classes(), EffectService]):
            try:
                q(channel).delete()
            except Exception:  # a queue that does not exist yet is fine
                channel = conn.channel()
