"""`hub up`: each service in its own process, replicas as asked, a killed one started again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.faults import child_pids, command_line

from .harness import ROOT, hub_env, wait_for


def _children(pid: int, service: str) -> list[int]:
    return [c for c in child_pids(pid) if command_line(c)[-1:] == [service]]


def test_hub_up_runs_replicas_and_restarts_one_killed(backbone, tmp_path):
    ctx, db, broker = backbone
    env = hub_env(db, broker)
    logs = tmp_path / "logs"
    out = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen([sys.executable, "-m", "workers.cli", "up", "relay", "channel_sync",
                           "--replicas", "channel_sync=2", "--log-dir", str(logs)], cwd=ROOT, env=env,
                          stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(_children(up.pid, "channel_sync")) == 2 and len(_children(up.pid, "relay")) == 1, 60,
                 "one relay and two channel_sync processes")
        wait_for(lambda: all(b"hub: running" in p.read_bytes() for p in logs.glob("*.log")), 60, "them to start")
        victim = _children(up.pid, "channel_sync")[0]
        os.kill(victim, signal.SIGKILL)
        def restarted() -> bool:
            # One reading of the children: two readings could see the victim alive in the first (counted) and
            # gone in the second, passing before the supervisor has even noticed the death.
            running = _children(up.pid, "channel_sync")
            return len(running) == 2 and victim not in running

        wait_for(restarted, 60, "the killed channel_sync to be started again")
    finally:
        children = child_pids(up.pid)
        up.send_signal(signal.SIGTERM)
        up.wait(30)
        out.close()
    text = (tmp_path / "up.log").read_text()
    assert "hub: up: relay x1, channel_sync x2" in text
    assert f"(pid {victim}) killed by SIGKILL" in text
    assert not [c for c in children if os.path.exists(f"/proc/{c}") and command_line(c)], "a child outlived hub up"


@pytest.mark.parametrize("server", ["gunicorn", "nameko"])
def test_a_gateway_holding_an_idle_keep_alive_connection_stops_at_once_on_sigterm(backbone, tmp_path, server):
    """A client (a courier, the platform) keeping its connection open left eventlet's hub with nothing due: the
    SIGTERM handler's stop never ran, and `hub up` killed the gateway after 15 s at every stop. gunicorn's
    worker lingers on an idle kept-alive connection for 2 s at most."""
    import http.client
    import socket
    import time

    ctx, db, broker = backbone
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = open(tmp_path / "gateway.log", "wb")
    gw = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--no-sandbox", "gateway"], cwd=ROOT,
                          env=hub_env(db, broker, {"HUB_HTTP_PORT": str(port), "HUB_GATEWAY_SERVER": server}),
                          stdout=out, stderr=subprocess.STDOUT)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        def answers() -> bool:
            try:
                conn.request("GET", "/health")
                resp = conn.getresponse()
                resp.read()
                return resp.status == 200
            except OSError:
                conn.close()
                return False

        wait_for(answers, 60, "the gateway to answer")       # the connection stays open (HTTP/1.1 keep-alive)
        time.sleep(10)                     # what start-up and the request left due has run: the hub is idle
        started = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(timeout=20) == 0
        assert time.monotonic() - started < 5
    finally:
        conn.close()
        if gw.poll() is None:
            gw.kill()
            gw.wait()
