"""The request body's size limit, on every route (callbacks included), enforced while the body is read;
and no NUL character and no lone UTF-16 surrogate anywhere in a request (PostgreSQL cannot store a NUL,
and no database or system takes a string that is not UTF-8: either would be a 500, not a 400).

A body with a Content-Length over the limit is refused before a byte of it is read. A chunked or
streamed body (no Content-Length) is read at most `limit` + 1 bytes: past the limit it is cut off and
refused. Either way the answer is 413 and nothing changes. A body within the limit is put back as a
buffer of known length, so handlers read JSON and forms as usual (`hub.http.max_body_bytes`).
"""
from __future__ import annotations

import io
import json
import re
from typing import Any

from werkzeug import Request

from hub.domain.limits import is_utf8

from .errors import ApiError

CHUNK = 64 * 1024
MAX_DEPTH = 64              # no request the hub takes nests deeper; a thousand levels would exhaust the stack


def too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body may be at most {limit} bytes", limit=limit)


def limit_body(request: Request, limit: int) -> None:
    """Refuse a body bigger than `limit` bytes (413); a malformed Content-Length is 400."""
    environ = request.environ
    request.max_content_length = limit          # werkzeug's own readers (forms) keep to it too
    declared = environ.get("CONTENT_LENGTH")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared and not chunked:                # neither absent nor empty
        if not re.fullmatch(r"[0-9]{1,18}", declared.strip()):
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


DECODED = "hub.decoded_json"


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
        nul, depth, surrogate = _scan(body)
        if depth > MAX_DEPTH:                       # the handlers' own readers must not run out of stack
            raise ApiError(400, "nested_too_deeply", f"JSON may nest at most {MAX_DEPTH} levels")
        if nul:
            raise ApiError(400, "nul_character", "a NUL character is not accepted in a request body")
        if surrogate:                               # "\ud800" in JSON, or its bytes: json reads both
            raise not_unicode("the request body")
        request.environ[DECODED] = body             # decoded once: `Call.body` validates this value


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
