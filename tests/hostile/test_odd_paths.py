"""Paths a careless or hostile client sends: control characters, percent-encoded NUL, invalid UTF-8, a
10 kB path. Every answer is the API's JSON `{error, message}` with a 4xx — in-process, through werkzeug's
server on loopback, and through the gateway as production runs it — on gunicorn (the default), and on nameko's
HTTP entrypoint (`hub.http.server: nameko`), whose own route map used to answer a newline in the path with
werkzeug's HTML 404 page before the API saw it)."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.api.conftest import POS_KEYS
from tests.backbone.harness import HubProcess, hub_env, wait_for
from tests.conftest import BROKER_URL, PG_URL
from tests.support import config_env

STORE_KEY = POS_KEYS["S001"]
# Raw request targets, as the bytes on the request line.
ODD = [b"/api/v1/stores/%0A/pickup-orders", b"/api/v1/stores/%0D%0A/pickup-orders",
       b"/api/v1/stores/%09/pickup-orders", b"/api/v1/stores/%01/pickup-orders", b"/api/v1/stores/%7F/pickup-orders",
       b"/api/v1/stores/S001%0A/pickup-orders", b"/api/v1/stores/%00/pickup-orders",
       b"/api/v1/stores/%FF/pickup-orders",
       b"/api/v1/stores/%C3%28/pickup-orders",
       b"/api/v1/stores/\xff\xfe/pickup-orders", b"/api/v1/stock/%0A", b"/api/v1/%0A", b"/%0A", b"/%0A/%0A",
       b"/api/v1/stock/" + b"A" * 10_000,
       b"/api/v1/stores/" + b"%0A" * 3_000 + b"/pickup-orders"]
IDS = [t[:48].decode("latin-1").encode("unicode_escape").decode() + (f"…({len(t)}B)" if len(t) > 48 else "")
       for t in ODD]


def raw_get(port: int, target: bytes, key: str = STORE_KEY) -> tuple[int, str, bytes]:
    """GET `target` exactly as given (no client re-encoding); (status, content type, body)."""
    return send_raw(port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key.encode()
                    + b"\r\nConnection: close\r\n\r\n")


def send_raw(port: int, raw: bytes) -> tuple[int, str, bytes]:
    """Send `raw` as the whole request and read the answer to the end; (status, content type, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, body = out + rest[:n], rest[n + 2:]
    return out


def assert_json_refusal(status: int, content_type: str, body: bytes) -> None:
    assert 400 <= status < 500, (status, body[:300])
    assert content_type.startswith("application/json"), (status, content_type, body[:300])
    answer = json.loads(body)
    assert isinstance(answer.get("error"), str) and answer["error"]
    assert isinstance(answer.get("message"), str) and answer["message"]


@pytest.mark.parametrize("target", ODD, ids=IDS)
def test_odd_paths_in_process(api, target):
    from urllib.parse import unquote_to_bytes
    r = api.get(unquote_to_bytes(target).decode("latin-1"), headers={"Authorization": f"Bearer {STORE_KEY}"})
    assert_json_refusal(r.status_code, r.content_type, r.data)


@pytest.mark.parametrize("target", ODD, ids=IDS)
def test_odd_paths_through_werkzeugs_server(live, target):
    assert_json_refusal(*raw_get(int(live.base.rsplit(":", 1)[1]), target))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["gunicorn", "granian", "nameko"])
def gateway_port(request, tmp_path_factory) -> Iterator[int]:
    """The gateway service alone, as `hub run gateway` starts it (on RabbitMQ, PostgreSQL), on each server."""
    if not (PG_URL and BROKER_URL):
        pytest.skip("the gateway needs PostgreSQL and RabbitMQ (make test sets them)")
    port = _free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    proc = HubProcess(["gateway"], hub_env(PG_URL, BROKER_URL, {"HUB_HTTP_PORT": str(port),
                                                                "HUB_GATEWAY_SERVER": request.param}), log)
    assert f"({request.param}" in log.read_text() or request.param == "nameko"
    try:
        wait_for(lambda: _listening(port), 30, "the gateway to listen")
        yield port
    finally:
        proc.stop()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("target", ODD, ids=IDS)
def test_odd_paths_through_the_gateway(request, gateway_port, target):
    answer = raw_get(gateway_port, target)
    if request.node.callspec.params["gateway_port"] == "granian" and any(b >= 0x80 for b in target):
        # Raw (not percent-encoded) non-ASCII bytes on the request line: hyper refuses them itself, a bare 400
        # (workers/granian_server.py); the API never sees them, so nothing changes either way.
        assert answer[0] == 400 and answer[2] == b"", answer
        return
    assert_json_refusal(*answer)


def test_the_gateway_still_serves_a_real_path(gateway_port):
    key = config_env()["HUB_POS_S001_KEY"]                   # the gateway's environment (hub_env)
    status, content_type, body = raw_get(gateway_port, b"/api/v1/stores/S001/pickup-orders", key)
    assert status == 200 and content_type.startswith("application/json"), (status, body[:300])
