"""What every request goes through around its handler, in order: the body's size limit, no character the hub
cannot store, the caller's key — and, whatever a handler lets out, the one place errors become answers (like
nameko-examples' gateway `mapped_errors`). `api/app.py` runs them.

The body: its size limit, on every route (callbacks included), enforced while the body is read;
and no NUL character and no lone UTF-16 surrogate anywhere in a request (PostgreSQL cannot store a NUL,
and no database or system takes a string that is not UTF-8: either would be a 500, not a 400).

A body with a Content-Length over the limit is refused before a byte of it is read. A chunked or
streamed body (no Content-Length) is read at most `limit` + 1 bytes: past the limit it is cut off and
refused. Either way the answer is 413 and nothing changes. A body within the limit is put back as a
buffer of known length, so handlers read JSON and forms as usual (`hub.http.max_body_bytes`).

The caller: keys from config.yaml, compared in constant time.

Each audience has its own keys — channel keys for the mini-program paths, a store's
pos_key for that store's paths only, the ERP's key, the operations key. A missing or
wrong key is 401; a store key on another store's path is 403 and the answer names no
store. Callbacks carry no key: each system's own signature is checked by its connector.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import re
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug import Request

from hub.domain.errors import (
    BadInput,
    HubError,
    IllegalTransition,
    InsufficientStock,
    MemberRefused,
    NoRoute,
    NotFound,
    PickupCodeRejected,
    PickupLocked,
    SaleEnded,
    SaleSoldOut,
)
from hub.domain.limits import is_utf8
from hub.ports import ConnectorError, GateUnavailable, MappingError, SignatureError
from hub.services.orders import IdempotencyConflict
from hub.storage.outage import is_outage

from ..config import HubConfig, secret_values
from .http import DECODED, ApiError, Caller, Route

# -- the body ---------------------------------------------------------------------------------------------

CHUNK = 64 * 1024
MAX_DEPTH = 64              # no request the hub takes nests deeper; a thousand levels would exhaust the stack


def too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body may be at most {limit} bytes", limit=limit)


_BYTES = re.compile(r"[0-9]{1,18}")            # a Content-Length, compiled once (checked on every request)


def limit_body(request: Request, limit: int) -> None:
    """Refuse a body bigger than `limit` bytes (413); a malformed Content-Length is 400."""
    environ = request.environ
    request.max_content_length = limit          # werkzeug's own readers (forms) keep to it too
    declared = environ.get("CONTENT_LENGTH")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared and not chunked:                # neither absent nor empty
        if not _BYTES.fullmatch(declared.strip()):
            raise ApiError(400, "bad_content_length", "Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise too_large(limit)
        return
    if not chunked and "wsgi.input_terminated" not in environ:
        return                                   # no length and no stream: there is no body
    stream, buf = environ["wsgi.input"], bytearray()
    while True:
        piece = stream.read(min(CHUNK, limit + 1 - len(buf)))
        if not piece:
            break
        buf += piece
        if len(buf) > limit:                     # cut off here: the rest is never read
            raise too_large(limit)
    environ["wsgi.input"] = io.BytesIO(bytes(buf))
    environ["CONTENT_LENGTH"] = str(len(buf))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)


def not_unicode(where: str) -> ApiError:
    return ApiError(400, "invalid_unicode", f"{where} holds a lone UTF-16 surrogate: it is not valid Unicode text")


def refuse_unstorable(request: Request, params: dict[str, str]) -> None:
    """400 for a NUL character or a lone surrogate in the path, the query or the body (raw, in a JSON string
    or key, or a form value): no system the hub talks to sends one, and the database cannot hold one."""
    if any("\x00" in v for v in params.values()) or any("\x00" in k + v for k, v in request.args.items(multi=True)):
        raise ApiError(400, "nul_character", "a NUL character is not accepted in a path or query")
    # werkzeug decodes the URL with replacement characters; checked anyway, as the handlers trust it
    if not all(is_utf8(v) for v in params.values()) or not all(is_utf8(k + v)
                                                               for k, v in request.args.items(multi=True)):
        raise not_unicode("the path or query")
    raw = request.get_data(cache=True)
    if b"\x00" in raw or (request.mimetype == "application/x-www-form-urlencoded"
                          and any("\x00" in k + v for k, v in request.form.items(multi=True))):
        raise ApiError(400, "nul_character", "a NUL character is not accepted in a request body")
    if raw.lstrip()[:1] in (b"{", b"["):
        try:
            body = json.loads(raw)
        except RecursionError:
            raise ApiError(400, "nested_too_deeply", f"JSON may nest at most {MAX_DEPTH} levels") from None
        except ValueError:
            return                                  # malformed: the handler says so
        if _plain(raw):                             # nothing the scan could find: the usual body
            request.environ[DECODED] = body
            return
        nul, depth, surrogate = _scan(body)
        if depth > MAX_DEPTH:                       # the handlers' own readers must not run out of stack
            raise ApiError(400, "nested_too_deeply", f"JSON may nest at most {MAX_DEPTH} levels")
        if nul:
            raise ApiError(400, "nul_character", "a NUL character is not accepted in a request body")
        if surrogate:                               # "\ud800" in JSON, or its bytes: json reads both
            raise not_unicode("the request body")
        request.environ[DECODED] = body             # decoded once: `Call.body` validates this value


def _plain(raw: bytes) -> bool:
    """Whether a JSON body (with no NUL byte) decodes to no NUL, no lone surrogate and no nesting deeper than
    MAX_DEPTH, told from its bytes alone: without a `\\u` escape a string holds only what the bytes spell, strict
    UTF-8 spells no surrogate (json reads bytes with `surrogatepass`, so a surrogate's bytes would), and no more
    brackets than MAX_DEPTH cannot nest deeper. Checked in C: the walk over the decoded body (`_scan`) was a
    twentieth of a flash-sale attempt's gateway CPU. Any doubt: False, and the body is scanned."""
    if b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        return False
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _scan(value: Any) -> tuple[bool, int, bool]:
    """(holds a NUL in a string or key, how deep it nests, holds a lone surrogate), without recursion."""
    nul, deepest, surrogate, todo = False, 0, False, [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, str):
            nul = nul or "\x00" in v
            surrogate = surrogate or not is_utf8(v)
        elif isinstance(v, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str):
                    nul = nul or "\x00" in k
                    surrogate = surrogate or not is_utf8(k)
                todo.append((x, depth + 1))
    return nul, deepest, surrogate


# -- the caller -------------------------------------------------------------------------------------------

UNAUTHORIZED = "missing or wrong key; send this caller's key as a bearer token"


ANONYMOUS = Caller("anonymous")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _match(presented: str, candidates: list[tuple[str, str]]) -> str | None:
    """The id whose key equals `presented`; every candidate is compared, so timing says nothing."""
    found = None
    for ident, key in candidates:
        if key and _same(presented, key):
            found = ident
    return found


def presented_key(request: Request, allow_basic: bool = False) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    if allow_basic and scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, ValueError):      # ValueError: a non-ASCII value ("Basic é")
            return None, False
        return (password or None), True
    return None, False


def channel_keys(cfg: HubConfig) -> list[tuple[str, str]]:
    return [(ch.id, ch.key) for ch in cfg.channels]


def store_keys(cfg: HubConfig) -> list[tuple[str, str]]:
    return [(loc.id, loc.pos_key or "") for loc in cfg.stores]


def erp_key(cfg: HubConfig) -> str:
    erp = cfg.systems.get("erp")
    return str(erp.get("key") or "") if erp is not None else ""


def all_secrets(cfg: HubConfig) -> list[str]:
    """Every key the API knows, for the log filter to redact verbatim."""
    return secret_values(cfg)


def authenticate(cfg: HubConfig, request: Request, route: Route, params: dict[str, str]) -> Caller:
    """The caller of `route`, or ApiError 401/403."""
    if route.audience in ("public", "callback"):
        return ANONYMOUS
    key, via_basic = presented_key(request, allow_basic=route.audience == "admin")
    if not key:
        raise _unauthorized(route)
    if route.audience in ("channel", "channel_or_ops"):
        ident = _match(key, channel_keys(cfg))
        if ident:
            return Caller("channel", ident)
        if route.audience == "channel_or_ops" and _same(key, cfg.hub.ops_key):
            return Caller("ops", "ops")
    elif route.audience == "store":
        ident = _match(key, store_keys(cfg))
        if ident:
            # Valid key, but is it this store's? Say nothing about the store asked for.
            if not _same(params.get("store_id", ""), ident):
                raise ApiError(403, "forbidden", "this key is not valid for this store")
            return Caller("store", ident)
    elif route.audience == "erp":
        wanted = erp_key(cfg)
        if wanted and _same(key, wanted):
            return Caller("erp", "erp")
    elif route.audience in ("ops", "admin"):
        if _same(key, cfg.hub.ops_key):
            return Caller("ops", "ops", via_basic)
    raise _unauthorized(route)


def _unauthorized(route: Route) -> ApiError:
    err = ApiError(401, "unauthorized", UNAUTHORIZED)
    if route.audience == "admin":
        err.extra["_headers"] = {"WWW-Authenticate": 'Basic realm="o2o-hub admin"'}
    else:
        err.extra["_headers"] = {"WWW-Authenticate": "Bearer"}
    return err


def csrf_token(cfg: HubConfig) -> str:
    """The console's form token: a browser with basic credentials must also prove it loaded /admin."""
    return hmac.new(cfg.hub.ops_key.encode(), b"admin-console-form", "sha256").hexdigest()[:32]


# -- errors as answers ------------------------------------------------------------------------------------

# Domain and connector errors -> (status, error code). Most specific first.
MAPPED_ERRORS: list[tuple[type[BaseException], int, str | None]] = [
    (InsufficientStock, 409, None),
    (NoRoute, 409, None),
    (SaleEnded, 409, None),
    (SaleSoldOut, 409, None),
    (IllegalTransition, 409, None),
    (MemberRefused, 409, None),
    (IdempotencyConflict, 422, None),
    (PickupLocked, 423, None),
    (PickupCodeRejected, 422, None),
    (NotFound, 404, None),
    (BadInput, 422, None),               # UnknownSku, UnknownLocation, ...
    (HubError, 422, None),
    (SignatureError, 401, "bad_signature"),
    (MappingError, 422, "unmappable_payload"),
    (ConnectorError, 502, "upstream_failed"),
    (StaleDataError, 409, "conflict"),
    (IntegrityError, 409, "conflict"),
    (OperationalError, 503, "database_unavailable"),
]


def error_body(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for any exception a handler let out."""
    if isinstance(exc, ApiError):
        extra = dict(exc.extra)
        headers = extra.pop("_headers", {})
        return exc.status, {"error": exc.error, "message": exc.message, **extra}, headers
    if isinstance(exc, GateUnavailable):    # the flash-sale gate's Redis away: ours, like the database
        return 503, {"error": "gate_unavailable", "message": "the flash-sale gate is not reachable; retry shortly"}, \
            {"Retry-After": "1"}
    if is_outage(exc):          # our database away or contended: the same request will work shortly
        return 503, {"error": "database_unavailable", "message": "the database is not reachable; retry shortly"}, \
            {"Retry-After": "1"}
    for kind, status, code in MAPPED_ERRORS:
        if isinstance(exc, kind):
            body: dict[str, Any] = {"error": code or getattr(exc, "code", "error"), "message": _message(exc)}
            if isinstance(exc, InsufficientStock):
                body["short"] = exc.short
            elif isinstance(exc, NoRoute):
                body["reasons"] = exc.reasons
            elif isinstance(exc, IllegalTransition):
                body["status"], body["target"] = exc.current, exc.target
            return status, body, {}
    return 500, {"error": "internal", "message": "internal error; see the hub's log"}, {}


def _message(exc: BaseException) -> str:
    if isinstance(exc, StaleDataError | IntegrityError):
        return "the resource changed meanwhile; retry the request"
    if isinstance(exc, OperationalError):
        return "the database is not reachable"
    if isinstance(exc, ConnectorError) and not isinstance(exc, SignatureError | MappingError):
        return f"{exc.system} did not answer as expected"
    return str(exc)
