"""`hub run gateway` on gunicorn: its threaded worker serving the hub's API inside this (supervised) process.

No gunicorn arbiter: `hub up`'s supervisor already restarts a dead process with backoff, and a second
supervisor between them would hide the gateway's own exit. Real threads, no monkey-patching — gunicorn
spends a quarter to two fifths less CPU per request than nameko's eventlet entrypoint (bench figures).
Replicas share the port (SO_REUSEPORT). What a client sends that never reaches the API (a malformed
request line, a header too large) is answered in the API's JSON shape too, never gunicorn's HTML page.
SIGTERM stops accepting, finishes the requests in hand and exits; SIGINT and SIGQUIT exit at once."""
from __future__ import annotations

import json
import logging
import os
import select
import signal
from typing import Any

from gunicorn import util
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import errors, message
from gunicorn.sock import create_sockets
from gunicorn.workers.gthread import ThreadWorker

REQUEST_LINE_LIMIT = 65536      # bytes, as the nameko gateway takes: a long path is the API's to answer in JSON
GRACEFUL_STOP_S = 10            # below the supervisor's 15 s between SIGTERM and SIGKILL
KEEPALIVE_S = 30
INLINE_REQUESTS = 32            # requests one thread serves in a row on a connection whose next one is waiting
log = logging.getLogger(__name__)

# gunicorn clamps a request line to 8190 bytes whatever its setting says; the module's ceiling is read at parse.
message.MAX_REQUEST_LINE = max(message.MAX_REQUEST_LINE, REQUEST_LINE_LIMIT + 1)

_STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.LimitRequestLine, 414, "uri_too_long"),
    (errors.LimitRequestHeaders, 431, "request_header_fields_too_large"),
    (errors.ExpectationFailed, 417, "expectation_failed"),
    (errors.UnsupportedTransferCoding, 501, "not_implemented"),
    (errors.ForbiddenProxyRequest, 403, "forbidden"),
]


def error_answer(exc: BaseException) -> tuple[int, dict[str, str]]:
    """The status and JSON body for what gunicorn refused before the API saw the request."""
    if isinstance(exc, errors.ParseException) and not isinstance(
            exc, errors.InvalidResponseHeader | errors.InvalidResponseHeaderName | errors.ConfigurationProblem):
        for kind, status, code in _STATUS:
            if isinstance(exc, kind):
                return status, {"error": code, "message": str(exc) or code.replace("_", " ")}
        return 400, {"error": "bad_request", "message": f"malformed request: {exc}"}
    return 500, {"error": "internal_error", "message": "the gateway could not answer this request"}


class GatewayWorker(ThreadWorker):
    """gunicorn's threaded worker, answering its own refusals in JSON and keeping the hub's SIGUSR2."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, body = error_answer(exc)
        if status >= 500:
            log.error("gateway could not serve a request", exc_info=exc)
        else:
            log.warning("refused a malformed request from %s: %s", (addr or ("",))[0], exc)
        payload = json.dumps(body).encode()
        head = (f"HTTP/1.1 {status} {body['error'].replace('_', ' ').title()}\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode("latin-1")
        try:
            util.write_nonblock(client, head + payload)
        except Exception:               # the client went away: nothing to answer
            log.debug("could not send the refusal", exc_info=True)

    def handle(self, conn: Any) -> Any:
        """gunicorn's handling of one request, then of the next on the same connection while one is already
        waiting: a kept-alive connection goes back to the main thread's poller only when its client is quiet.
        Each hand-over (poller -> pool -> poller) is two thread wake-ups and GIL switches, which cost more CPU
        than a small request itself."""
        result = super().handle(conn)
        for _ in range(INLINE_REQUESTS):
            if result is not True or not self.alive or not _next_waiting(conn):
                break
            result = super().handle(conn)
        return result

    def init_signals(self) -> None:
        super().init_signals()
        # gunicorn resets every signal it knows to its default, and SIGUSR2's default ends the process: the
        # bench's profile dumps would kill the gateway. (The CPU sampler sees only this main thread, the poll
        # loop, not the request threads, so the gunicorn gateway is not sampled.)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _next_waiting(conn: Any) -> bool:
    """The connection's next request is already here: read ahead into gunicorn's buffer, or on the socket."""
    if conn.parser is not None and conn.parser.unreader.buf.getvalue():
        return True
    try:
        ready, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):           # closed meanwhile: gunicorn's own path decides
        return False
    return bool(ready)


class _Loaded:
    """What gunicorn's worker asks of an application: its WSGI callable, already built."""

    def __init__(self, wsgi: Any):
        self._wsgi = wsgi

    def wsgi(self) -> Any:
        return self._wsgi


def serve(wsgi: Any, host: str, port: int, threads: int, announce: str) -> None:
    """Serve `wsgi` on host:port until SIGTERM (graceful) or SIGINT; print `announce` once listening."""
    cfg = Config()
    for key, value in {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                       "worker_class": "gthread", "threads": threads, "worker_connections": 1000,
                       "keepalive": KEEPALIVE_S, "graceful_timeout": GRACEFUL_STOP_S, "reuse_port": True,
                       "limit_request_line": REQUEST_LINE_LIMIT, "loglevel": "warning",
                       "accesslog": None, "http_parser": "python"}.items():
        cfg.set(key, value)
    glog = Logger(cfg)
    sockets = create_sockets(cfg, glog)
    worker = GatewayWorker(1, os.getppid(), sockets, _Loaded(wsgi), cfg.timeout, cfg, glog)
    cfg.set("post_worker_init", lambda _worker: print(announce, flush=True))
    try:
        worker.init_process()           # runs until told to stop
    finally:
        worker.tmp.close()
