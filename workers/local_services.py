"""`hub up` on one machine: start PostgreSQL, RabbitMQ and Redis when the config points at them on
loopback and they do not answer, with the machine's own commands (the same as `scripts/services.sh`).

A remote server is never touched: there the operator's own supervision keeps it up.
"""
from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PORTS = {"postgresql": 5432, "amqp": 5672, "redis": 6379}


def _pg_start() -> list[str]:
    clusters = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    return ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1] if clusters else "15", "main", "start"]


START_COMMANDS = {
    "postgresql": _pg_start,
    "amqp": lambda: ["rabbitmq-server", "-detached"],
    "redis": lambda: ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
                      "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
                      "--logfile", "/var/log/redis/ci.log"],
}


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_up(url: str | None, *, wait_s: float = 60.0) -> bool:
    """Start the server behind `url` if it is local and down. True if it answers (or is not ours to start)."""
    if not url or "://" not in url:
        return True
    parts = urlsplit(url)
    kind = parts.scheme.split("+")[0]
    if kind not in START_COMMANDS or (parts.hostname or "") not in LOOPBACK:
        return True
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS[kind]
    if _answers(host, port):
        return True
    cmd = START_COMMANDS[kind]()
    log.warning("%s on %s:%d does not answer; starting it: %s", kind, host, port, " ".join(cmd))
    try:
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("could not start %s: %s", kind, exc)
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _answers(host, port):
            return True
        time.sleep(0.5)
    log.error("%s on %s:%d still does not answer after %.0fs", kind, host, port, wait_s)
    return False


def ensure_local_services(*urls: str | None) -> None:
    for url in urls:
        ensure_up(url)
