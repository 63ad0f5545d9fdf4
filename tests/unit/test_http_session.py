"""Connectors' HTTP sessions read the environment once (connectors/base.http_session): a proxy for the
system's address (NO_PROXY honoured) and a CA bundle, not re-read on every request."""
from __future__ import annotations

import requests

from connectors.base import http_session


def test_the_proxy_and_ca_bundle_come_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/retailer.pem")
    remote = http_session("https://api.weixin.qq.com")
    assert remote.proxies["https"] == "http://proxy.example:3128" and remote.verify == "/etc/ssl/certs/retailer.pem"
    assert "https" not in http_session("http://127.0.0.1:8085").proxies          # NO_PROXY: straight there
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")
    settings = remote.merge_environment_settings("https://api.weixin.qq.com/x", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.example:3128"        # not looked up again per request


def test_without_a_proxy_the_session_goes_direct(monkeypatch):
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = http_session("https://api.weixin.qq.com")
    assert not {k: v for k, v in session.proxies.items() if k != "no"} and session.verify is True
    assert isinstance(session, requests.Session) and session.trust_env is False


def test_the_pooled_client_reads_the_environment_as_the_session_does(monkeypatch):
    """connectors/pooled_http.py (WeChat's and Meituan's stock calls): the same proxy, NO_PROXY and CA bundle."""
    import urllib3

    from connectors.pooled_http import PooledHttp
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/retailer.pem")
    remote = PooledHttp("https://api.weixin.qq.com")._pool
    assert isinstance(remote, urllib3.ProxyManager) and remote.proxy is not None
    assert remote.proxy.url == "http://proxy.example:3128"
    assert remote.connection_pool_kw["ca_certs"] == "/etc/ssl/certs/retailer.pem"
    assert not isinstance(PooledHttp("http://127.0.0.1:8085")._pool, urllib3.ProxyManager)   # NO_PROXY
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://all.example:3128")
    assert PooledHttp("https://api.weixin.qq.com")._pool.proxy.url == "http://all.example:3128"


def test_the_pooled_client_turns_transport_failures_and_statuses_into_connector_errors():
    """A refused connection is transient and names no token; 429/5xx transient, other 4xx permanent; JSON read.
    Served by the sandbox's own simulator base (a bare http.server whose shutdown waited on an event another
    test's eventlet patching had made green hung a worker)."""
    import pytest

    from connectors.base import PermanentError, TransientError
    from connectors.pooled_http import PooledHttp
    from sandbox.base import Response, Simulator

    class Answers(Simulator):
        def setup_routes(self) -> None:
            self.route("POST", "/200", lambda req: Response(200, {"got": req.json(), "query": req.query}))
            self.route("POST", "/503", lambda req: Response(503, {"error": "busy"}, {"Retry-After": "7"}))
            self.route("POST", "/400", lambda req: Response(400, {"error": "no", "form": req.body.decode()}))

    with Answers() as sim:
        client = PooledHttp(sim.base_url)
        ok = client.call("shop", "POST", sim.base_url + "/200", params={"access_token": "t k"}, json_body={"num": 3})
        assert ok.json() == {"got": {"num": 3}, "query": {"access_token": ["t k"]}}
        assert sim.received[-1].headers["Content-Type"] == "application/json"
        with pytest.raises(TransientError) as busy:
            client.call("shop", "POST", sim.base_url + "/503", params={"a": "1"}, json_body={})
        assert busy.value.retry_after == 7
        with pytest.raises(PermanentError):
            client.call("shop", "POST", sim.base_url + "/400", params={"a": "1"}, form={"x": "1 2"})
        assert sim.received[-1].body == b"x=1+2"
        client.close()
        base = sim.base_url
    with pytest.raises(TransientError) as refused:
        PooledHttp(base).call("shop", "POST", base + "/200", params={"access_token": "SECRET123"}, json_body={},
                              timeout=1)
    assert "SECRET123" not in str(refused.value)
