"""`hub up`: every service in its own process, as many replicas as configured, each restarted
with backoff when it dies — and why it died logged.

One `hub run --no-sandbox SERVICE` child per replica. A child that exits (a crash, kill -9, its
broker connection gone) is started again after a pause that doubles up to a limit and starts
over once a child has run well for a while. SIGTERM or Ctrl-C stops every child (SIGTERM, then
SIGKILL for one that does not stop in time).
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .launcher import ROOT

log = logging.getLogger(__name__)

RESTART_FIRST_WAIT_S = 0.5
RESTART_MAX_WAIT_S = 30.0
STABLE_AFTER_S = 60.0      # a child that ran this long starts its next pause from the first again
STOP_GRACE_S = 15.0


@dataclass
class Child:
    service: str
    replica: int
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    delay: float = RESTART_FIRST_WAIT_S
    restarts: int = 0
    log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.service}#{self.replica}"


def why(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Supervisor:
    """Starts and watches the children; `run()` until `stop()` (or SIGTERM/SIGINT)."""

    def __init__(self, replicas: dict[str, int], env: dict[str, str], *, config_path: str | None = None,
                 log_dir: Path | None = None):
        self.env, self.config_path, self.log_dir = env, config_path, log_dir
        self.children = [Child(service, i + 1) for service, n in replicas.items() for i in range(n)]
        self._stopping = False

    def _spawn(self, child: Child) -> None:
        cmd = [sys.executable, "-m", "workers.cli", "run", "--no-sandbox", child.service]
        if self.config_path:
            cmd += ["--config", self.config_path]
        out = None
        if self.log_dir is not None:
            if child.log_file is None:
                child.log_file = open(self.log_dir / f"{child.service}-{child.replica}.log", "ab")
            out = child.log_file
        child.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out,
                                      stderr=subprocess.STDOUT if out else None)
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.name, child.proc.pid)

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def check(self) -> None:
        """Notice children that died and start them again when their pause is over."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is not None and (code := child.proc.poll()) is not None:
                if now - child.started_at > STABLE_AFTER_S:
                    child.delay = RESTART_FIRST_WAIT_S
                log.error("%s (pid %d) %s after %.0fs; restarting in %.1fs", child.name, child.proc.pid, why(code),
                          now - child.started_at, child.delay)
                child.proc, child.restart_at = None, now + child.delay
                child.delay = min(child.delay * 2, RESTART_MAX_WAIT_S)
            if child.proc is None and not self._stopping and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def run(self, poll_s: float = 0.2) -> None:
        def stop(signum: int, frame: object) -> None:
            self._stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.start()
        while not self._stopping:
            self.check()
            time.sleep(poll_s)
        self.stop()

    def stop(self) -> None:
        self._stopping = True
        self.check()        # a child that died since the last look is still reported (and, stopping, not restarted)
        running = [(c, c.proc) for c in self.children if c.proc is not None and c.proc.poll() is None]
        for _, proc in running:
            proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child, proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, STOP_GRACE_S)
                proc.kill()
                proc.wait()
        for child in self.children:
            if child.log_file is not None:
                child.log_file.close()
        log.info("every service stopped")


def parse_replicas(text: str) -> dict[str, int]:
    """"gateway=2,relay=2" -> {"gateway": 2, "relay": 2}."""
    replicas: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, n = part.partition("=")
        if not n.isdigit():
            raise ValueError(f"--replicas wants SERVICE=N, got {part!r}")
        replicas[name.strip()] = int(n)
    return replicas
