"""The sandbox runner: every simulator up on its own port, and an env the config accepts."""
from __future__ import annotations

import pytest
import requests

from hub.config import load_config
from sandbox.runner import SIMULATORS, start_sandbox


def test_runner_starts_simulators_and_points_the_config_at_them():
    with start_sandbox() as sandbox:
        assert {"crm", "wechat_pay", "wechat_shop", "pos"} <= set(sandbox.simulators)
        env = sandbox.env()
        cfg = load_config(env=env)                        # every secret and address resolves
        assert cfg.systems["crm"].get("base_url") == sandbox.crm.base_url
        assert cfg.systems["pos"].get("base_url") == sandbox.pos.base_url
        ports = {sim.port for sim in sandbox.simulators.values()}
        assert len(ports) == len(sandbox.simulators) and 0 not in ports
        for spec in SIMULATORS:
            if spec.name in sandbox.simulators:
                assert env[spec.url_var].startswith(sandbox.simulators[spec.name].base_url)
        # each answers HTTP and records it; reset forgets it
        requests.get(sandbox.pos.base_url + "/v2/orders/none", timeout=2)
        assert len(sandbox.pos.received) == 1
        sandbox.reset()
        assert sandbox.pos.received == []


def test_only_starts_the_named_simulators():
    with start_sandbox(only=["crm"]) as sandbox:
        assert list(sandbox.simulators) == ["crm"]
        assert "HUB_POS_URL" not in sandbox.env()
        with pytest.raises(AttributeError, match="no simulator 'pos'"):
            sandbox.pos  # noqa: B018
