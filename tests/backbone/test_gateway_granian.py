"""The production gateway on granian (workers/granian_server.py): what hyper refuses is a 4xx that closes the
connection and changes nothing, a long path still reaches the API, the bench's SIGUSR2 ends neither process,
pipelined requests are answered in order, and a kill -9 of the supervised process leaves no worker behind it
still serving. Shared replicas and a graceful SIGTERM are tested for both servers in test_gateway_server."""
from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from tests.conftest import BROKER_URL, PG_URL
from tests.hostile.test_odd_paths import assert_json_refusal, raw_get
from tests.hostile.test_odd_paths import send_raw as _send

from .harness import HubProcess, wait_for
from .test_gateway_server import _gateway as shared_gateway
from .test_gateway_server import assert_pipelined_answered_in_order

pytestmark = pytest.mark.skipif(not (PG_URL and BROKER_URL),
                                reason="the gateway needs PostgreSQL and RabbitMQ (make test sets them)")

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gateway(tmp_path, port: int, name: str = "gateway") -> HubProcess:
    return shared_gateway(tmp_path, port, name, "granian")


def _workers(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _answers(port: int) -> bool:
    try:
        return _send(port, HEALTH)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    port = _free_port()
    proc = _gateway(tmp_path_factory.mktemp("granian"), port)
    try:
        yield port, proc
    finally:
        proc.stop()


@pytest.mark.parametrize("raw,status", [
    (b"GARBAGE\r\n\r\n", 400),                                           # no method, no target, no version
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400),                         # an HTTP version nobody speaks
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),        # a space in a header's name
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),   # past 64 kB
], ids=["garbage", "version", "header-name", "line-over-64kB"])
def test_what_granian_refuses_is_a_4xx_and_the_gateway_serves_on(gateway, raw, status):
    got, _, body = _send(gateway[0], raw)
    assert got == status and body == b""                     # hyper's own answer: no body, the connection closed
    assert _answers(gateway[0])


def test_a_long_path_and_a_big_header_reach_the_api(gateway):
    status, content_type, body = raw_get(gateway[0], b"/api/v1/stock/" + b"A" * 30_000)
    assert_json_refusal(status, content_type, body)
    assert json.loads(body)["error"] != "uri_too_long"      # the API's answer
    status, content_type, body = _send(gateway[0], b"GET /nope HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000
                                       + b"\r\nConnection: close\r\n\r\n")
    assert status == 404 and json.loads(body)["error"] == "not_found"


def test_the_bench_profile_signal_ends_neither_process(gateway):
    port, proc = gateway
    for pid in [proc.proc.pid, *_workers(proc.proc.pid)]:
        os.kill(pid, signal.SIGUSR2)
    time.sleep(0.5)
    assert proc.proc.poll() is None and _answers(port)


def test_pipelined_requests_on_one_connection_are_all_answered_in_order(gateway):
    assert_pipelined_answered_in_order(gateway[0])


def test_a_killed_gateway_leaves_no_worker_serving(tmp_path):
    """kill -9 of the process the supervisor watches: its worker goes too, so the port is free for the
    restarted one and no orphan keeps serving with its own pools."""
    port = _free_port()
    gw = _gateway(tmp_path, port)
    try:
        workers = _workers(gw.proc.pid)
        assert workers and _answers(port)
        gw.kill()
        wait_for(lambda: not any(_alive(w) for w in workers), 20, "the worker to end with its parent")
        assert not _answers(port)
    finally:
        gw.stop()
