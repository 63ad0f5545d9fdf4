"""Start hub services as real processes (`hub run …`): for tests, benchmarks and operators' scripts."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hub.metrics import process_exited

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class HubProcess:
    """`hub run --no-sandbox SERVICE…` in a child process, its output in `log_path`."""

    def __init__(self, services: list[str], env: dict[str, str], log_path: Path, ready_timeout: float = 60):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--no-sandbox", *services], cwd=ROOT,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: b"hub: running" in log_path.read_bytes() or self.proc.poll() is not None, ready_timeout,
                 "services to start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"hub run exited: {log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        process_exited(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        process_exited(self.proc.pid)        # its live-only gauges stop counting in multiprocess mode
        self._log.close()
