"""WeChat's `cgi-bin/token` as both WeChat simulators serve it: client-credential tokens
that can be expired on demand (errcode 42001) to exercise the connectors' refresh."""
from __future__ import annotations

import secrets
import threading

from .base import Request, Response


class TokenIssuer:
    def __init__(self, app_id: str, app_secret: str):
        self.app_id, self._secret = app_id, app_secret
        self._live: set[str] = set()
        self._expired: set[str] = set()
        self.issued = 0
        self._lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        q = {k: v[-1] for k, v in req.query.items()}
        if q.get("grant_type") != "client_credential":
            return Response(200, {"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.app_id:
            return Response(200, {"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self._secret:
            return Response(200, {"errcode": 40125, "errmsg": "invalid appsecret"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._live.add(token)
            self.issued += 1
        return Response(200, {"access_token": token, "expires_in": 7200})

    def refuse(self, req: Request) -> Response | None:
        """An errcode answer if the request's access_token is not good, else None."""
        token = (req.query.get("access_token") or [""])[-1]
        with self._lock:
            if token in self._live:
                return None
            if token in self._expired:
                return Response(200, {"errcode": 42001, "errmsg": "access_token expired"})
        return Response(200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})

    def expire_all(self) -> None:
        with self._lock:
            self._expired |= self._live
            self._live.clear()
