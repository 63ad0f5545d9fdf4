"""What every connector shares: its errors, the binder it looks ids up with, and the
one retry policy for outbound calls (exponential backoff with jitter, Retry-After honoured)."""
from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from hub.ports import (  # noqa: F401  (re-exported)
    Binder,
    ConnectorError,
    MappingError,
    OutcomeUnknown,
    PermanentError,
    SignatureError,
    TransientError,
)

# The errors and the binder port belong to the core, which must understand them; connectors use them from here.
from hub.privacy import redact

T = TypeVar("T")


class MemoryBinder:
    """A dict-backed binder, for tests and the sandbox."""

    def __init__(self) -> None:
        self._ext: dict[tuple[str, str, str], str] = {}
        self._int: dict[tuple[str, str, str], str] = {}

    def to_internal(self, system: str, kind: str, external_id: str) -> str | None:
        return self._ext.get((system, kind, external_id))

    def to_external(self, system: str, kind: str, internal_id: str) -> str | None:
        return self._int.get((system, kind, internal_id))

    def bind(self, system: str, kind: str, external_id: str, internal_id: str) -> None:
        self._ext[(system, kind, external_id)] = internal_id
        self._int[(system, kind, internal_id)] = external_id


class RetryPolicy:
    """The one retry policy for outbound calls.

    Retries TransientError with exponential backoff and jitter, honouring a Retry-After
    the system gave; never retries PermanentError, SignatureError or MappingError.
    After the last attempt the TransientError propagates: the caller parks a dead letter.
    """

    def __init__(self, attempts: int = 5, initial: float = 0.2, maximum: float = 5.0,
                 jitter: float = 0.2, sleep: Callable[[float], None] = time.sleep):
        self.attempts, self.initial, self.maximum, self.jitter = attempts, initial, maximum, jitter
        self._sleep = sleep

    def _pause(self, attempt_number: int, exc: BaseException | None) -> float:
        """The pause after the `attempt_number`th attempt failed with `exc`: backoff, or the system's Retry-After."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.maximum * 4)
        return min(self.initial * 2 ** (attempt_number - 1), self.maximum) + random.uniform(0, self.jitter)

    @staticmethod
    def _retries(exc: BaseException) -> bool:
        # a condition the system says lasts a while (`wait_up_to`) is not slept through here: the
        # consumer tries again later (hub/consumers.py, retries due)
        return isinstance(exc, TransientError) and not getattr(exc, "wait_up_to", None)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The first attempt is a plain call: building and running tenacity's machinery for each call was 5 % of
        # channel sync's CPU (a push per SKU), and nearly every call succeeds at once.
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if self.attempts < 2 or not self._retries(exc):
                raise
            self._sleep(self._pause(1, exc))

        def wait(state: RetryCallState) -> float:            # tenacity counts from the second attempt
            return self._pause(state.attempt_number + 1, state.outcome.exception() if state.outcome else None)

        retrying = Retrying(stop=stop_after_attempt(self.attempts - 1), wait=wait,
                            retry=retry_if_exception(self._retries), reraise=True, sleep=self._sleep)
        return retrying(fn, *args, **kwargs)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0) if when else None


class HttpReply(Protocol):
    """What `raise_for_http` reads of an answer (requests' Response, or `pooled_http.HttpAnswer`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Any: ...


def raise_for_http(system: str, response: HttpReply) -> None:
    """Classify an HTTP answer: 5xx and 429 are transient, other 4xx permanent."""
    status = response.status_code
    if status < 400:
        return
    text = response.text[:300]
    if status == 429 or status >= 500:
        raise TransientError(system, f"HTTP {status}: {text}", status=status,
                             retry_after=parse_retry_after(response.headers.get("Retry-After")))
    raise PermanentError(system, f"HTTP {status}: {text}", status=status)


def http_session(base_url: str) -> requests.Session:
    """A session for one system, its environment (the proxy for its address, honouring NO_PROXY, and a CA
    bundle) read here once: requests otherwise reads the environment again on every request
    (`merge_environment_settings`), a tenth of channel sync's CPU under load (issue 11)."""
    session = requests.Session()
    session.trust_env = False
    if base_url:
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session


def http_call(system: str, session: requests.Session, method: str, url: str, *,
              timeout: float = 5.0, **kwargs: Any) -> requests.Response:
    """One HTTP request with transport failures turned into TransientError."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except (requests.Timeout, requests.ConnectionError) as exc:
        # requests names the URL in its message: a token or app secret in the query must not reach a dead letter
        raise TransientError(system, redact(f"{type(exc).__name__}: {exc}")) from exc
    raise_for_http(system, response)
    return response
