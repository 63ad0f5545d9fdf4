"""The production gateway on granian (workers/granian_server.py): what hyper refuses is a 4xx that closes the
connection and changes nothing, a long path still reaches the API, the bench's SIGUSR2 ends neither process,
two replicas share one port, a SIGTERM lets a request in hand finish, and a kill -9 of the supervised process
leaves no worker behind it still serving."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from tests.conftest import BROKER_URL, PG_URL
from tests.hostile.test_odd_paths import assert_json_refusal, raw_get
from tests.hostile.test_odd_paths import send_raw as _send

from .harness import HubProcess, hub_env, wait_for

pytestmark = pytest.mark.skipif(not (PG_URL and BROKER_URL),
                                reason="the gateway needs PostgreSQL and RabbitMQ (make test sets them)")

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gateway(tmp_path, port: int, name: str = "gateway") -> HubProcess:
    proc = HubProcess(["gateway"], hub_env(PG_URL, BROKER_URL, {"HUB_HTTP_PORT": str(port),
                                                                "HUB_GATEWAY_SERVER": "granian"}),
                      tmp_path / f"{name}.log")
    assert "(granian" in (tmp_path / f"{name}.log").read_text()
    return proc


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
    paths = [b"/nope-1", b"/health", b"/nope-2", b"/nope-3"]
    raw = b"".join(b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n" for p in paths[:-1])
    raw += b"GET " + paths[-1] + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway[0]), timeout=30) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)] == [404, 200, 404, 404]
    assert data.index(b"nope-1") < data.index(b"nope-2") < data.index(b"nope-3")


def test_two_replicas_share_the_port_and_either_serves_when_the_other_stops(tmp_path):
    port = _free_port()
    first, second = _gateway(tmp_path, port, "first"), _gateway(tmp_path, port, "second")
    try:
        for _ in range(20):
            assert _send(port, HEALTH)[0] == 200
        first.stop()
        for _ in range(5):
            assert _send(port, HEALTH)[0] == 200
    finally:
        first.stop()
        second.stop()


def test_sigterm_lets_a_request_in_hand_finish(tmp_path):
    """A client whose request is being read when the stop comes still gets its answer, and the process ends."""
    port = _free_port()
    gw = _gateway(tmp_path, port)
    answer: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")       # the headers not yet ended
        time.sleep(0.3)
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)

        def finish() -> None:
            s.sendall(b"Connection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            answer.append(int(data.split(b" ", 2)[1]))

        t = threading.Thread(target=finish)
        t.start()
        t.join(20)
    assert answer == [200]
    assert gw.proc.wait(20) == 0
    gw.stop()


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
