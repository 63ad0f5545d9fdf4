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
