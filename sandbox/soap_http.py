"""The HTTP side of the SAP- and NAV-style ERP simulators: several spyne SOAP services on one
server, each at its own path with its own WSDL (GET on the path), behind an HTTP login.

Logins: HTTP Basic (SAP NetWeaver, NAV with NavUserPassword over Basic) and NTLM (NAV with
Windows login). The NTLM acceptor is pyspnego's own NTLM implementation; it reads accepted
users from the file named by NTLM_USER_FILE (DOMAIN:USER:PASSWORD per line), which this
module writes for the simulator's user — a process-wide setting, fine for a sandbox.
NTLM authenticates a TCP connection, so the handshake is tracked per client address:port.
"""
from __future__ import annotations

import base64
import io
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

from spyne import Application
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

StartResponse = Callable[..., Any]
Hook = Callable[[str], "tuple[str, bytes] | None"]


class BasicLogin:
    scheme = "basic"

    def __init__(self, username: str, password: str, realm: str):
        self.username, self.password, self.realm = username, password, realm

    def check(self, environ: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
        """(the user, headers for a 401) — the user is None when the login fails."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if user == self.username and password == self.password:
                return user, []
        return None, [("WWW-Authenticate", f'Basic realm="{self.realm}"')]


class NtlmLogin:
    """NTLM over HTTP: Negotiate → 401 with the challenge → Authenticate on the same connection."""

    scheme = "ntlm"

    def __init__(self, username: str, password: str, domain: str = "CRONUS"):
        import spnego  # the same library requests-ntlm uses on the client side

        self._spnego = spnego
        self.username, self.domain = username, domain
        fd, self._user_file = tempfile.mkstemp(prefix="sandbox-ntlm-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{domain}:{username}:{password}\n")
        os.environ["NTLM_USER_FILE"] = self._user_file
        self._contexts: dict[tuple[str, str], Any] = {}
        self._authenticated: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def check(self, environ: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
        conn = (environ.get("REMOTE_ADDR", ""), str(environ.get("REMOTE_PORT", "")))
        header = environ.get("HTTP_AUTHORIZATION", "")
        with self._lock:
            if not header and conn in self._authenticated:
                return self.username, []           # a later request on an authenticated connection
            if header[:5].lower() != "ntlm ":
                return None, [("WWW-Authenticate", "NTLM")]
            token = base64.b64decode(header[5:])
            ctx = self._contexts.get(conn)
            if ctx is None or token[8:12] == b"\x01\x00\x00\x00":     # a new Negotiate message
                ctx = self._spnego.server(protocol="ntlm")
                self._contexts[conn] = ctx
            try:
                answer = ctx.step(token)
            except Exception:     # a wrong password surfaces as a pyspnego error: refuse, start over
                self._contexts.pop(conn, None)
                return None, [("WWW-Authenticate", "NTLM")]
            if not ctx.complete:
                return None, [("WWW-Authenticate", "NTLM " + base64.b64encode(answer or b"").decode())]
            self._contexts.pop(conn, None)
            self._authenticated.add(conn)
            return ctx.client_principal or self.username, []

    def forget(self, addr: str, port: str) -> None:
        with self._lock:
            self._authenticated.discard((addr, port))
            self._contexts.pop((addr, port), None)

    def close(self) -> None:
        try:
            os.unlink(self._user_file)
        except OSError:
            pass


def soap_app(services: Iterable[type], tns: str, name: str, simulator: Any) -> WsgiApplication:
    app = Application(list(services), tns=tns, name=name,
                      in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    app.simulator = simulator
    return WsgiApplication(app)


class SoapHttpServer:
    """Serves {path: spyne WSGI app} behind a login. Fault knobs at the HTTP front:
    `before_call(path)` may answer instead of the service, `after_call(path)` may replace
    the service's answer after it ran (an answer lost on the way back)."""

    def __init__(self, routes: dict[str, WsgiApplication], login: BasicLogin | NtlmLogin,
                 before_call: Hook | None = None, after_call: Hook | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.routes, self.login = routes, login
        self.before_call, self.after_call = before_call, after_call
        self.host, self.port = host, port
        self.logins: list[str | None] = []          # who each request logged in as (None: refused)
        self._server: Any = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        app = self.routes.get(path)
        if app is None:
            return _answer(start_response, "404 Not Found", b"not found")
        user, challenge = self.login.check(environ)
        self.logins.append(user)
        if user is None:
            return _answer(start_response, "401 Unauthorized", b"<html><body>401 Unauthorized</body></html>",
                           challenge)
        if environ.get("REQUEST_METHOD") == "GET":
            environ["QUERY_STRING"] = "wsdl"         # the service URL itself answers with its WSDL
        elif self.before_call is not None:
            canned = self.before_call(path)
            if canned is not None:
                return _answer(start_response, *canned)
        if environ.get("REQUEST_METHOD") == "POST" and self.after_call is not None:
            held: list[Any] = []
            body = b"".join(app(environ, lambda status, headers, exc_info=None: held.extend([status, headers])))
            replaced = self.after_call(path)
            if replaced is not None:
                return _answer(start_response, *replaced)
            start_response(*held)
            return [body]
        return app(environ, start_response)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SoapHttpServer:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="sim-soap", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if isinstance(self.login, NtlmLogin):
            self.login.close()


def _answer(start_response: StartResponse, status: str, body: bytes,
            headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    # Content-Length keeps the connection open for the next leg of an NTLM handshake.
    start_response(status, [("Content-Type", "text/html"), ("Content-Length", str(len(body))), *headers])
    return [body]


def _handler_for(app: Callable[..., Any]) -> type[BaseHTTPRequestHandler]:
    """A keep-alive HTTP/1.1 front for a WSGI app. Werkzeug's and wsgiref's servers close
    every connection, and NTLM authenticates a connection, not a request."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            environ = {
                "REQUEST_METHOD": self.command, "PATH_INFO": url.path, "QUERY_STRING": url.query,
                "SERVER_NAME": self.server.server_address[0], "SERVER_PORT": str(self.server.server_address[1]),
                "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
                "REMOTE_PORT": str(self.client_address[1]), "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": self.headers.get("Content-Type", ""), "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
                "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            }
            for key, value in self.headers.items():
                name = "HTTP_" + key.upper().replace("-", "_")
                if name not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                    environ[name] = value
            started: list[Any] = []
            chunks = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
            try:
                payload = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
            status, headers = started
            self.send_response(int(status.split()[0]), status.partition(" ")[2])
            for key, value in headers:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def finish(self) -> None:
            super().finish()
            forget = getattr(getattr(app, "login", None), "forget", None)
            if forget is not None:     # a closed connection's NTLM login ends with it
                forget(self.client_address[0], str(self.client_address[1]))

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


@dataclass
class ErpFaultKnobs:
    """Knobs both BAPI- and page-style ERPs have: a lock on create, an answer lost after saving."""

    lock_next: int = 0           # the create fails as locked this many times
    lose_answer_next: int = 0    # the order is saved, then the gateway answers 504 instead


@dataclass
class SoapErpSimulator:
    """What the SAP- and NAV-style simulators share: login, stock per (plant, item), a record of
    calls and orders, the fault knobs, and the lifecycle. Subclasses give `routes()` and `login()`."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str = ""
    password: str = ""
    catalogue: list[Any] = field(default_factory=list)
    faults: ErpFaultKnobs = field(default_factory=ErpFaultKnobs)
    calls: list[str] = field(default_factory=list)                  # operation names, in order
    received_orders: list[dict[str, Any]] = field(default_factory=list)
    first_plant: str = ""                                           # where the catalogue's stock sits

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stock: dict[tuple[str, str], Decimal] = {}             # (plant, item) -> on hand
        self._lose_after = False
        self._http: SoapHttpServer | None = None
        for i, item in enumerate(self.catalogue):
            self._stock[(self.first_plant, item.item_no)] = Decimal(100 + 10 * i)

    def routes(self) -> dict[str, WsgiApplication]:
        raise NotImplementedError

    def login(self) -> BasicLogin | NtlmLogin:
        raise NotImplementedError

    # -- controls ----------------------------------------------------------------------
    def set_stock(self, plant: str, item_no: str, qty: int) -> None:
        with self._lock:
            self._stock[(plant, item_no)] = Decimal(qty)

    def calls_to(self, operation: str) -> list[str]:
        with self._lock:
            return [c for c in self.calls if c == operation]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.received_orders.clear()
            self.faults = ErpFaultKnobs()

    @property
    def logins(self) -> list[str | None]:
        return self._http.logins if self._http else []

    def _record(self, operation: str) -> None:
        with self._lock:
            self.calls.append(operation)

    def _saved(self) -> None:
        """An order was just saved: lose its answer if the knob says so (call under the lock)."""
        if self.faults.lose_answer_next > 0:
            self.faults.lose_answer_next -= 1
            self._lose_after = True

    def _after_call(self, path: str) -> tuple[str, bytes] | None:
        with self._lock:
            lost, self._lose_after = self._lose_after, False
        return ("504 Gateway Timeout", b"<html><body>504 Gateway Timeout</body></html>") if lost else None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._http = SoapHttpServer(self.routes(), self.login(), None, self._after_call, self.host, self.port).start()
        self.port = self._http.port
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
