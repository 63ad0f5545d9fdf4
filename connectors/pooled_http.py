"""HTTP straight over a urllib3 pool, for the calls channel sync makes per SKU and store (WeChat's stock API,
Meituan's): requests' layer around the same urllib3 pool — preparing each request, merging the session's
settings into it, its runtime Protocol checks (`isinstance(x, _SupportsItems)`, some 10 µs each, several per
call) — was half of each push's CPU. The environment (proxy for the system's address, NO_PROXY, a CA bundle)
is read once, as `base.http_session` does; failures are the connectors' errors, as `base.http_call`'s."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3

from hub.privacy import redact

from .base import TransientError, raise_for_http

# As requests' adapter: no retry of its own (the connector's RetryPolicy retries), a read not retried.
_NO_RETRY = urllib3.Retry(0, read=False)
POOL_SIZE = 10                   # connections kept per host: channel sync has at most 8 pushes in flight


@dataclass(frozen=True)
class HttpAnswer:
    """What `raise_for_http` and the connectors read of an answer."""

    status_code: int
    headers: Any                 # urllib3's HTTPHeaderDict: case-insensitive `.get`
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


class PooledHttp:
    """One system's connections."""

    def __init__(self, base_url: str):
        proxies = requests.utils.get_environ_proxies(base_url) if base_url else {}
        proxy = proxies.get(base_url.split(":", 1)[0]) or proxies.get("all")     # as requests picks one
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._pool: urllib3.PoolManager = urllib3.ProxyManager(proxy, maxsize=POOL_SIZE, ca_certs=bundle) if proxy \
            else urllib3.PoolManager(maxsize=POOL_SIZE, ca_certs=bundle)

    def call(self, system: str, method: str, url: str, *, timeout: float = 5.0,
             params: dict[str, Any] | None = None, json_body: Any = None,
             form: dict[str, Any] | None = None) -> HttpAnswer:
        """One request: `params` in the query, the body as JSON or as a form. A transport failure is a
        TransientError (its text redacted: the URL may carry a token); an HTTP error status is classified
        by `raise_for_http`."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        headers, body = {}, None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(json_body, allow_nan=False).encode()
        elif form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form, doseq=True).encode()
        try:
            reply = self._pool.request(method, url, body=body, headers=headers, retries=_NO_RETRY,
                                       timeout=urllib3.Timeout(connect=timeout, read=timeout))
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(system, redact(f"{type(exc).__name__}: {exc}")) from exc
        answer = HttpAnswer(reply.status, reply.headers, reply.data)
        raise_for_http(system, answer)
        return answer

    def close(self) -> None:
        self._pool.clear()
