"""The sync-latency figure's background load is open loop: requests go out on the clock, not when the
previous answer came back (issue 11: the closed loop of 4 threads offered 122/s of the 200/s asked)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.load import PacedLoad
from workers.launcher import wait_for


class _Stalled(BaseHTTPRequestHandler):
    """A hub that answers nothing until the test lets it: counts the requests that reached it."""
    arrived = 0
    lock = threading.Lock()
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Stalled.lock:
            _Stalled.arrived += 1
        _Stalled.release.wait(30)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128     # the default 5 refuses connections while a loaded machine is slow to accept


def test_the_load_keeps_its_pace_while_the_hub_has_not_answered():
    server = _Server(("127.0.0.1", 0), _Stalled)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with PacedLoad(base, "S002", "key", "chan", ["SKU-1"], "2026-01-01T00:00:00+00:00", rate_per_s=200,
                       orders_per_s=10) as load:
            # A closed loop of 4 sale threads and 1 order thread never has more than 5 requests out.
            wait_for(lambda: _Stalled.arrived >= 20, 20, "20 requests out while none is answered", interval=0.05)
            _Stalled.release.set()
            wait_for(lambda: load.sent >= 20, 20, "the answers counted", interval=0.05)
        assert load.errors == 0
    finally:
        _Stalled.release.set()
        server.shutdown()
