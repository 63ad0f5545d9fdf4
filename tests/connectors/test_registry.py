"""The connector registry by role and place: several systems per role, config.yaml saying which
serve which store or channel, and `hub check-config` refusing a system named for a role it does not play."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from connectors.base import MemoryBinder
from connectors.registry import build_connector, check_wiring, connector_class
from hub.config import PAID_ON_CHANNEL, HubConfig, load_config
from hub.ports import ConnectorRegistry
from sandbox.credentials import sandbox_env

BASE = load_config(env=sandbox_env())


def with_(**changes) -> HubConfig:
    """config.yaml as shipped, a second Dada-speaking courier beside the first, and `changes`."""
    systems = {**BASE.systems, "dada_east": BASE.systems["local_delivery"]}
    return HubConfig.model_validate({**BASE.model_dump(), "systems": {k: v.model_dump() for k, v in systems.items()},
                                     **changes})


def registry(cfg: HubConfig) -> ConnectorRegistry:
    return ConnectorRegistry(cfg, MemoryBinder, build_connector)


def located(cfg: HubConfig, store: str, couriers: list[str] | None) -> HubConfig:
    locations = [loc.model_dump() | ({"couriers": couriers} if loc.id == store else {}) for loc in cfg.locations]
    return with_(locations=locations)


def test_a_store_is_served_by_every_local_courier_by_default_in_config_order():
    assert [c.name for c in registry(with_()).couriers("S001")] == ["local_delivery", "sf_same_city", "shansong",
                                                                    "dada_east"]


def test_a_store_names_its_couriers_and_their_order():
    reg = registry(located(BASE, "S002", ["dada_east", "express", "local_delivery"]))
    assert [c.name for c in reg.couriers("S002")] == ["dada_east", "local_delivery"]   # the parcel carrier is not local
    assert [c.name for c in reg.couriers("S001")] == ["local_delivery", "sf_same_city", "shansong",
                                                                    "dada_east"]
    assert reg.express_courier_for("S002").name == "express"


def test_the_payment_platform_is_the_channels():
    order = SimpleNamespace(channel="miniprogram")        # the registry reads only the order's channel
    assert registry(BASE).payment_platform_for(order).name == "wechat_pay"
    own = [ch.model_dump() | {"payment": PAID_ON_CHANNEL} for ch in BASE.channels]
    assert registry(with_(channels=own)).payment_platform_for(order) is None


def test_a_system_is_known_by_what_its_connector_declares():
    reg = registry(BASE)
    assert reg.role_of("local_delivery") == "local_courier" and reg.role_of("wechat_pay") == "payment"
    assert reg.declared("express").error_body == {"result": False, "returnCode": "500"}
    assert connector_class("local_courier").callback == "courier_claim"
    assert [c.name for c in reg.channels()] == ["wechat_shop", "meituan"]


def test_each_systems_declaration_is_asked_once_however_often_a_role_is_asked_for():
    asked: list[str] = []

    class CountingFactory:
        def __call__(self, *args, **kwargs):
            return build_connector(*args, **kwargs)

        def declared(self, kind: str):
            asked.append(kind)
            return build_connector.declared(kind)

    reg = ConnectorRegistry(with_(), MemoryBinder, CountingFactory())
    for _ in range(3):
        assert reg.names("local_courier") == ["local_delivery", "sf_same_city", "shansong", "dada_east"]
        assert reg.system_for("payment") == "wechat_pay" and reg.names("no such role") == []
    assert sorted(asked) == sorted(s.kind for s in with_().systems.values())


def test_check_config_refuses_a_system_in_a_role_it_does_not_play():
    assert check_wiring(BASE) == []
    problems = dict(check_wiring(located(BASE, "S001", ["crm"])))
    assert "crm is a crm, not a courier" in problems["locations[S001].couriers"]
    paid_by_pos = [ch.model_dump() | {"payment": "pos"} for ch in BASE.channels]
    assert "not a payment platform" in dict(check_wiring(with_(channels=paid_by_pos)))["channels[miniprogram].payment"]


def test_two_payment_systems_make_each_channel_name_its_own():
    systems = {**{k: v.model_dump() for k, v in BASE.systems.items()}, "pay2": BASE.systems["wechat_pay"].model_dump()}
    cfg = HubConfig.model_validate({**BASE.model_dump(), "systems": systems})
    assert "several payment systems" in dict(check_wiring(cfg))["channels[miniprogram].payment"]


def test_config_refuses_an_unknown_courier_or_payment_system():
    with pytest.raises(ValueError, match="unknown courier"):
        located(BASE, "S001", ["nobody"])
    with pytest.raises(ValueError, match="unknown system 'nobody'"):
        with_(channels=[BASE.channels[0].model_dump() | {"payment": "nobody"}])
