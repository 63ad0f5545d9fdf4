"""The WeChat open-platform call: an access token (cached, refreshed when WeChat says it
expired) and the errcode/errmsg answer classified as the mapping's `errcode` value map says.

Shared by the shop connector and the payment connector's shipping-info upload.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from mappings import Mapping

from .base import MappingError, PermanentError, TransientError
from .pooled_http import PooledHttp

# WeChat's answer to an errcode the mapping calls `later` (10060001: the payment is not yet visible to the
# shipping service) is to wait up to about a minute; the consumer tries again until then.
LATER_WAIT_S = 60.0


class WeChatApi:
    """One app's calls to api.weixin.qq.com (or its simulator)."""

    def __init__(self, system: str, mapping: Mapping, base_url: str, app_id: str, app_secret: str,
                 timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.system, self.mapping = system, mapping
        self.base_url = base_url.rstrip("/")
        self._app_id, self._secret = app_id, app_secret
        self.http = PooledHttp(self.base_url)       # the shop's stock push is one call per SKU (pooled_http.py)
        self.timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def _classify(self, answer: dict) -> str:
        code = answer.get("errcode", 0)
        if code in (0, "0", None):
            return "ok"
        try:
            return self.mapping.value("errcode", code)
        except MappingError:
            return "permanent"     # any code not listed as transient is a refusal

    def token(self) -> str:
        with self._lock:
            if self._token and self._clock() < self._expires:
                return self._token
            resp = self.http.call(self.system, "GET", self.base_url + self.mapping.operation("token"),
                                  timeout=self.timeout, params={"grant_type": "client_credential",
                                                                "appid": self._app_id, "secret": self._secret})
            answer = resp.json()
            if self._classify(answer) != "ok" or not answer.get("access_token"):
                self._raise(answer, "token")
            self._token = answer["access_token"]
            # Refresh a little early so a call never goes out with a token about to lapse.
            self._expires = self._clock() + max(int(answer.get("expires_in", 7200)) - 300, 60)
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def post(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to a named operation; returns the answer when errcode is 0."""
        for attempt in (1, 2):
            resp = self.http.call(self.system, "POST", self.base_url + self.mapping.operation(operation),
                                  timeout=self.timeout, params={"access_token": self.token()}, json_body=body)
            try:
                answer = resp.json()
            except ValueError:
                raise TransientError(self.system, f"{operation}: answer is not JSON") from None
            kind = self._classify(answer)
            if kind == "ok":
                return answer
            if kind == "refresh_token" and attempt == 1:
                self.invalidate()          # expired or revoked: fetch a new one and try once more
                continue
            self._raise(answer, operation)
        raise AssertionError("unreachable")

    def _raise(self, answer: dict, operation: str) -> None:
        code, msg = answer.get("errcode"), answer.get("errmsg", "")
        text = f"{operation}: errcode {code}: {msg}"
        kind = self._classify(answer)
        if kind == "later":      # a state that settles by itself within WeChat's stated wait
            raise TransientError(self.system, text, wait_up_to=LATER_WAIT_S)
        if kind in ("transient", "refresh_token"):
            raise TransientError(self.system, text)
        raise PermanentError(self.system, text)
