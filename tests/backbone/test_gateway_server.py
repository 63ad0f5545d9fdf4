"""The production gateway on gunicorn's threaded worker (workers/http_server.py): what gunicorn itself refuses
is answered in the API's JSON shape, a long path still reaches the API, the bench's SIGUSR2 does not end it,
two replicas share one port, and a SIGTERM lets a request in hand finish."""
from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time

import pytest

from tests.conftest import BROKER_URL, PG_URL
from tests.hostile.test_odd_paths import assert_json_refusal, raw_get
from tests.hostile.test_odd_paths import send_raw as _send
from workers.http_server import REQUEST_LINE_LIMIT, error_answer

from .harness import HubProcess, hub_env

pytestmark = pytest.mark.skipif(not (PG_URL and BROKER_URL),
                                reason="the gateway needs PostgreSQL and RabbitMQ (make test sets them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


THREADED = ["gunicorn", "granian"]          # the production gateway's servers (granian's own: test_gateway_granian)


def _gateway(tmp_path, port: int, name: str = "gateway", server: str = "gunicorn") -> HubProcess:
    proc = HubProcess(["gateway"], hub_env(PG_URL, BROKER_URL, {"HUB_HTTP_PORT": str(port),
                                                                "HUB_GATEWAY_SERVER": server}),
                      tmp_path / f"{name}.log")
    assert f"({server}" in (tmp_path / f"{name}.log").read_text()
    return proc


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    port = _free_port()
    proc = _gateway(tmp_path_factory.mktemp("gunicorn"), port)
    try:
        yield port, proc
    finally:
        proc.stop()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",                                             # no method, no target, no version
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",                           # an HTTP version nobody speaks
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",          # a space in a header's name
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n",  # a header past gunicorn's limit
    b"GET /" + b"a" * (REQUEST_LINE_LIMIT + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",   # past even 64 kB
], ids=["garbage", "version", "header-name", "huge-header", "line-over-64kB"])
def test_what_gunicorn_refuses_is_answered_in_json(gateway, raw):
    assert_json_refusal(*_send(gateway[0], raw))


def test_a_path_between_gunicorns_8_kB_and_64_kB_reaches_the_api(gateway):
    status, content_type, body = raw_get(gateway[0], b"/api/v1/stock/" + b"A" * 30_000)
    assert_json_refusal(status, content_type, body)
    assert status != 414 and json.loads(body)["error"] != "uri_too_long"       # the API's answer, not gunicorn's


def test_the_bench_profile_signal_does_not_end_the_gateway(gateway):
    port, proc = gateway
    proc.proc.send_signal(signal.SIGUSR2)
    time.sleep(0.5)
    assert proc.proc.poll() is None
    assert _send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


@pytest.mark.parametrize("server", THREADED)
def test_two_replicas_share_the_port_and_either_serves_when_the_other_stops(tmp_path, server):
    port = _free_port()
    first, second = _gateway(tmp_path, port, "first", server), _gateway(tmp_path, port, "second", server)
    try:
        for _ in range(20):
            assert _send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200
        first.stop()
        for _ in range(5):
            assert _send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize("server", THREADED)
def test_sigterm_lets_a_request_in_hand_finish(tmp_path, server):
    """A client whose request is being read when the stop comes still gets its answer, and the process ends."""
    port = _free_port()
    gw = _gateway(tmp_path, port, server=server)
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


@pytest.mark.parametrize("exc_name,status", [("LimitRequestLine", 414), ("InvalidRequestLine", 400),
                                             ("LimitRequestHeaders", 431), ("InvalidHeaderName", 400)])
def test_error_answer_maps_gunicorns_refusals(exc_name, status):
    from gunicorn.http import errors

    exc = getattr(errors, exc_name)(*(["x"] if exc_name != "LimitRequestHeaders" else ["too large"]))
    got, body = error_answer(exc)
    assert got == status and body["error"] and body["message"]
    assert error_answer(RuntimeError("boom"))[0] == 500


def test_pipelined_requests_on_one_connection_are_all_answered_in_order(gateway):
    """A client that sends its next requests before the first answer (HTTP/1.1 pipelining, or a busy client on a
    kept-alive connection) has each answered in order, the thread serving them one after another."""
    assert_pipelined_answered_in_order(gateway[0])


def assert_pipelined_answered_in_order(port: int) -> None:
    paths = [b"/nope-1", b"/health", b"/nope-2", b"/nope-3"]
    raw = b"".join(b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n\r\n" for p in paths[:-1])
    raw += b"GET " + paths[-1] + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]     # a body ends without CRLF
    assert statuses == [404, 200, 404, 404]
    assert data.index(b"nope-1") < data.index(b"nope-2") < data.index(b"nope-3")


def test_the_next_request_counts_as_waiting_on_the_socket_or_in_gunicorns_buffer():
    from io import BytesIO
    from types import SimpleNamespace

    from workers.http_server import _next_waiting

    a, b = socket.socketpair()
    with a, b:
        idle = SimpleNamespace(sock=a, parser=SimpleNamespace(unreader=SimpleNamespace(buf=BytesIO())))
        assert not _next_waiting(idle)
        b.sendall(b"GET / HTTP/1.1\r\n")
        assert _next_waiting(idle)
        a.recv(100)
        buffered = SimpleNamespace(sock=a, parser=SimpleNamespace(unreader=SimpleNamespace(buf=BytesIO(b"GET"))))
        assert _next_waiting(buffered)
        assert not _next_waiting(SimpleNamespace(sock=a, parser=None))
