"""The embedded mode's compatibility layer for kombu's in-memory transport (`memory://`).

Two gaps, both closed here and nowhere else; production (RabbitMQ) never touches this:
- nameko 2.14 reads `content_type` and `reply_to` of an RPC message from
  `message.properties`; kombu's virtual transports keep `content_type` beside them.
- the virtual transport polls its queues once a second unless told otherwise, which
  would put a second of latency on every hop.
"""
from __future__ import annotations

from typing import Any

from kombu.transport import memory
from kombu.transport.virtual.base import Message as VirtualMessage

POLLING_INTERVAL = 0.005


class PropertiesMessage(VirtualMessage):
    """A virtual-transport message whose properties carry content_type and reply_to as AMQP's do."""

    def __init__(self, payload: dict[str, Any], channel: Any = None, **kwargs: Any):
        super().__init__(payload, channel=channel, **kwargs)
        self.properties.setdefault("content_type", payload.get("content-type"))
        headers = payload.get("headers") or {}
        if "reply_to" in headers:
            self.properties.setdefault("reply_to", headers["reply_to"])


def is_memory(broker_url: str) -> bool:
    return broker_url.startswith("memory://")


def install() -> None:
    """Make the in-memory transport's channels build PropertiesMessage. Idempotent."""
    memory.Channel.Message = PropertiesMessage


def transport_options(config: dict[str, Any]) -> dict[str, Any]:
    """Transport options for a nameko config: fast polling on the in-memory transport."""
    options = dict(config.get("TRANSPORT_OPTIONS") or {})
    if is_memory(config.get("AMQP_URI", "")):
        options.setdefault("polling_interval", POLLING_INTERVAL)
    return options


def nameko_config(broker_url: str, **extra: Any) -> dict[str, Any]:
    """The nameko config for a broker URL, with the layer applied when it is in-memory."""
    config: dict[str, Any] = {"AMQP_URI": broker_url, **extra}
    if is_memory(broker_url):
        install()
        config["TRANSPORT_OPTIONS"] = transport_options(config)
    return config
