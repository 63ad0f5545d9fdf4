"""bench/wrk.py: a script with a request budget (the flash-sale rush) ends when every wrk thread spent it,
and wrk reports the real elapsed time. wrk itself sleeps for the whole -d duration even when its threads
stopped early, so the rush used to report 10,000 attempts over 300 s (33/s) however fast the hub was."""
from __future__ import annotations

import shutil
import threading
import time

import pytest
from werkzeug import Request, Response
from werkzeug.serving import make_server

from bench import wrk

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None,
                                reason="wrk is not installed (make test and make bench install it)")


@pytest.fixture
def sold_out_server():
    @Request.application
    def app(request: Request) -> Response:
        return Response('{"error":"sold_out"}', status=409, content_type="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_budgeted_run_ends_when_spent_and_reports_its_real_duration(sold_out_server):
    started = time.monotonic()
    r = wrk.run(sold_out_server, "rush.lua", ["FS1", "key", "150", "t"], seconds=30, connections=4, threads=2)
    elapsed = time.monotonic() - started
    assert r.statuses.get("409", 0) >= 300             # 150 per thread, each thread answered in full
    assert elapsed < 15, elapsed                       # not the 30 s wrk was given
    assert r.seconds < 15 and r.per_s > 300 / 15       # the rate over the time it really took
