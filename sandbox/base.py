"""A small threaded HTTP simulator: routes, a record of what it received, and fault knobs.

Every simulator in the sandbox is one of these. Tests read `received` to assert on what
the hub sent, and turn the knobs (`faults`) to make the system slow, failing or rate-limited.
"""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Response:
    status: int = 200
    body: Any = None                     # dict/list -> JSON; str/bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode(), self.content_type or "application/json"


@dataclass
class Faults:
    """Fault knobs. `fail_next` fails that many requests then recovers; `error_rate` fails at random."""

    latency_s: float = 0.0
    error_rate: float = 0.0
    fail_next: int = 0
    error_status: int = 503              # 500/503 for errors, 429 for rate limits
    error_body: Any = None               # a system-specific error payload, if it has one
    retry_after: float | None = None
    timeout_next: int = 0                # hang this many requests past the client's timeout
    timeout_s: float = 10.0
    only_paths: tuple[str, ...] = ()     # restrict faults to these path prefixes (empty = all)
    down_until: float = 0.0              # time.monotonic() until which every request gets error_status (down)
    duplicate_callbacks: bool = False    # send each callback twice
    reorder_callbacks: bool = False      # send queued callbacks newest first

    def applies_to(self, path: str) -> bool:
        return not self.only_paths or any(path.startswith(p) for p in self.only_paths)


Handler = Callable[[Request], Response]
ADMIN_PREFIX = "/_sim/"                  # a simulator's fault endpoints (unsigned: the sandbox's, not the system's)


class Simulator:
    """Subclasses register routes with `self.route(method, path, handler)` in `setup_routes`."""

    name = "simulator"

    @classmethod
    def from_env(cls, env: dict[str, str], port: int = 0, callback_base: str | None = None) -> Simulator:
        """The simulator as the sandbox's credentials configure it (each system's own)."""
        raise NotImplementedError

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.received: list[Request] = []
        self.faults = Faults()
        self.rng = random.Random(7)
        self._routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.setup_routes()

    # -- to override -------------------------------------------------------------
    def setup_routes(self) -> None:
        """Register routes."""

    # -- routing -----------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def _find(self, method: str, path: str) -> Handler | None:
        handler = self._routes.get((method, path))
        if handler:
            return handler
        # Prefix routes end with "/*".
        for (m, p), h in self._routes.items():
            if m == method and p.endswith("/*") and path.startswith(p[:-1]):
                return h
        return None

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.faults = Faults()

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _inject_fault(self, path: str) -> Response | None:
        with self._lock:
            f = self.faults
            if path.startswith(ADMIN_PREFIX):     # the test's own hands on the simulator are never faulted
                return None
            if f.down_until and time.monotonic() < f.down_until:
                return Response(f.error_status, {"error": "simulated outage"}, {"Connection": "close"})
            if not f.applies_to(path):
                return None
            hang = f.timeout_next > 0
            if hang:
                f.timeout_next -= 1
        if hang:
            time.sleep(f.timeout_s)          # outside the lock: other requests carry on
            return Response(504, {"error": "simulated timeout"})
        with self._lock:
            fail = False
            if f.fail_next > 0:
                f.fail_next -= 1
                fail = True
            elif f.error_rate and self.rng.random() < f.error_rate:
                fail = True
            if not fail:
                return None
            headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            body = f.error_body if f.error_body is not None else {"error": "simulated failure"}
            return Response(f.error_status, body, headers)

    def handle(self, req: Request) -> Response:
        with self._lock:
            self.received.append(req)
        if self.faults.latency_s:
            time.sleep(self.faults.latency_s)
        fault = self._inject_fault(req.path)
        if fault is not None:
            return fault
        handler = self._find(req.method, req.path)
        if handler is None:
            return Response(404, {"error": f"no route {req.method} {req.path}"})
        return handler(req)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Simulator:
        sim = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms) on every keep-alive request.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                req = Request(self.command, url.path, parse_qs(url.query),
                              {k: v for k, v in self.headers.items()}, body)
                try:
                    resp = sim.handle(req)
                except Exception as exc:  # a simulator bug should read as a 500, not a hang
                    resp = Response(500, {"error": f"simulator error: {exc}"})
                payload, ctype = resp.encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sim-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SandboxSystem:
    """How the sandbox runs one system, declared beside its simulator (`SANDBOX = SandboxSystem(...)`)."""

    name: str                 # the system's name in config.yaml, and the attribute on Sandbox
    simulator: type[Simulator]   # offers `from_env(env, port, callback_base)`
    port: int                 # fixed port (config.yaml's default address), used by `hub sandbox` and the demo
    url_var: str              # the env var config.yaml reads this system's address from
    url_path: str = ""        # appended to the base URL (the ERP's WSDL)
    credentials: dict[str, str] = field(default_factory=dict)       # env var -> the sandbox's value
    generated: Callable[[], dict[str, str]] | None = None          # credentials made on first use (key pairs)
    bind: Callable[[Any, list[str]], Any] | None = None            # the hub's ids bound to the simulator's
    prepare: Callable[[Any, list[str]], None] | None = None        # the running simulator set up to match

    @property
    def target(self) -> str:
        return f"{self.simulator.__module__}:{self.simulator.__qualname__}"
