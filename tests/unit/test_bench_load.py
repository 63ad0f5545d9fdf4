"""The sync-latency figure's background load is open loop: requests go out on the clock, not when the
previous answer came back (issue 11: the closed loop of 4 threads offered 122/s of the 200/s asked), and it
keeps its pace rather than sending as fast as the hub answers."""
from __future__ import annotations

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import PacedLoad
from workers.launcher import wait_for

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None,
                                reason="wrk is not installed (make test and make bench install it)")


class _Hub(BaseHTTPRequestHandler):
    """A hub that answers 201 at once, or nothing until the test lets it: counts what reached it."""
    protocol_version = "HTTP/1.1"
    arrived: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Hub.lock:
            _Hub.arrived.append((self.path, self.headers.get("Authorization", ""),
                                 self.headers.get("Idempotency-Key", "")))
        _Hub.release.wait(30)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128     # the default 5 refuses connections while a loaded machine is slow to accept
    daemon_threads = True


@pytest.fixture
def hub():
    _Hub.arrived.clear()
    _Hub.release.clear()
    server = _Server(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Hub.release.set()
    server.shutdown()


def test_the_load_keeps_its_pace_while_the_hub_has_not_answered(hub):
    with PacedLoad(hub, "S002", "store-key", "chan", 40, "2026-01-01T00:00:00+00:00", rate_per_s=200,
                   orders_per_s=10) as load:
        # A closed loop of 4 sale threads and 1 order thread never has more than 5 requests out.
        wait_for(lambda: len(_Hub.arrived) >= 20, 20, "20 requests out while none is answered", interval=0.05)
        time.sleep(0.5)
        _Hub.release.set()
        wait_for(lambda: len(_Hub.arrived) >= 60, 20, "the load going on once answered", interval=0.05)
    assert load.errors == 0 and load.sent >= 60
    assert load.behind > 0           # the requests that fell due while the hub answered nothing


def test_the_load_sends_at_its_pace_not_as_fast_as_the_hub_answers(hub):
    _Hub.release.set()
    with PacedLoad(hub, "S002", "store-key", "chan", 40, "2026-01-01T00:00:00+00:00", rate_per_s=50,
                   orders_per_s=5) as load:
        wait_for(lambda: len(_Hub.arrived) >= 100, 20, "100 requests", interval=0.05)
    rate = load.sent / load.seconds
    assert rate < 200, rate          # an unpaced wrk on an instant server sends thousands a second
    sales = [a for a in _Hub.arrived if a[0] == "/api/v1/stores/S002/sales"]
    orders = [a for a in _Hub.arrived if a[0] == "/api/v1/orders"]
    assert len(sales) + len(orders) == len(_Hub.arrived)
    assert {a[1] for a in sales} == {"Bearer store-key"} and {a[1] for a in orders} == {"Bearer chan"}
    assert 0 < len(orders) < len(sales) / 5                      # about one in eleven
    assert len({a[2] for a in orders}) == len(orders)            # every order its own Idempotency-Key
