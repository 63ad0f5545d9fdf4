"""Keys per caller, compared in constant time; a store key only opens its own store."""
from __future__ import annotations

import pytest

from .conftest import CHANNEL_KEY, ERP_KEY, OPS_KEY, POS_KEYS

PROTECTED = [
    ("GET", "/api/v1/stock/TEA-001"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/stores/S001/pickup-orders"),
    ("POST", "/api/v1/stores/S001/sales"),
    ("GET", "/api/v1/erp/orders"),
    ("GET", "/metrics"),
    ("GET", "/admin"),
]


@pytest.mark.parametrize("method,path", PROTECTED)
def test_missing_or_wrong_key_is_401(api, method, path):
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Token " + CHANNEL_KEY}):
        r = api.call(method, path, key=None, headers=headers)
        assert r.status_code == 401, (path, headers)
        assert r.json["error"] == "unauthorized" and "not-a-key" not in r.get_data(as_text=True)


def test_each_key_opens_only_its_audience(api):
    assert api.get("/api/v1/erp/orders", key=CHANNEL_KEY).status_code == 401
    assert api.get("/api/v1/stock/TEA-001", key=POS_KEYS["S001"]).status_code == 401
    assert api.get("/api/v1/stores/S001/pickup-orders", key=ERP_KEY).status_code == 401
    assert api.get("/metrics", key=CHANNEL_KEY).status_code == 401
    assert api.get("/api/v1/stock/TEA-001").status_code == 200
    assert api.get("/api/v1/erp/orders", key=ERP_KEY).status_code == 200
    assert api.get("/metrics", key=OPS_KEY).status_code == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/stores/S002/pickup-orders"),
    ("POST", "/api/v1/stores/S002/pickup-orders/O1/ready"),
    ("POST", "/api/v1/stores/S002/sales"),
    ("PUT", "/api/v1/stores/S002/stock"),
    ("GET", "/api/v1/stores/S999/pickup-orders"),
])
def test_store_key_on_another_store_is_403_and_says_nothing_about_it(api, method, path):
    r = api.call(method, path, key=POS_KEYS["S001"], json={})
    assert r.status_code == 403
    text = r.get_data(as_text=True)
    assert r.json["error"] == "forbidden" and "S002" not in text and "S999" not in text and "Xujiahui" not in text


def test_own_store_key_is_accepted(api):
    r = api.get("/api/v1/stores/S002/pickup-orders", key=POS_KEYS["S002"])
    assert r.status_code == 200 and r.json["orders"] == []


def test_admin_takes_the_ops_key_as_basic_password(api):
    assert api.get("/admin", key=None, headers=api.basic(OPS_KEY)).status_code == 200
    r = api.get("/admin", key=None, headers=api.basic("wrong-password"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")


def test_health_and_openapi_need_no_key(api):
    assert api.get("/health", key=None).status_code == 200
    assert api.get("/openapi.json", key=None).status_code == 200
