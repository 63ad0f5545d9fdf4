"""Start hub services as real processes (`hub run …`) against RabbitMQ and PostgreSQL."""
from __future__ import annotations

import os

from kombu import Connection

from tests.support import config_env
from workers.launcher import ROOT, HubProcess, wait_for  # noqa: F401  (re-exported for the tests)


def hub_env(database_url: str, broker_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **config_env(), "HUB_DATABASE_URL": database_url, "HUB_BROKER_URL": broker_url,
           "HUB_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
           "HUB_EXTRA_SERVICES": "tests.backbone.services:EffectService"}
    env.update(extra or {})
    return env


def purge_hub_queues(broker_url: str) -> None:
    """Drop every hub queue so a test starts from an empty broker."""
    from workers.broker import event_queues
    from workers.runner import all_service_classes

    from .services import EffectService

    with Connection(broker_url) as conn:
        channel = conn.default_channel
        for q in event_queues([*all_service_classes(), EffectService]):
            try:
                q(channel).delete()
            except Exception:  # a queue that does not exist yet is fine
                channel = conn.channel()
