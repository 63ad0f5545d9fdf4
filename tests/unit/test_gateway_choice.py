"""Which HTTP server `hub run` gives the gateway, decided before eventlet would patch anything."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import DEFAULT_CONFIG_PATH
from workers.cli import _threaded_gateway_server, build_parser

TEXT = Path(DEFAULT_CONFIG_PATH).read_text()


def _args(*argv: str):
    return build_parser().parse_args(list(argv))


@pytest.fixture
def on_rabbitmq(monkeypatch):
    monkeypatch.setenv("HUB_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/x")
    monkeypatch.delenv("HUB_GATEWAY_SERVER", raising=False)


def test_the_gateway_alone_on_rabbitmq_runs_on_granian(on_rabbitmq, monkeypatch):
    assert _threaded_gateway_server(_args("run", "--no-sandbox", "gateway")) == "granian"
    monkeypatch.setenv("HUB_GATEWAY_SERVER", "gunicorn")
    assert _threaded_gateway_server(_args("run", "--no-sandbox", "gateway")) == "gunicorn"


def test_beside_other_services_or_embedded_it_stays_on_nameko(on_rabbitmq, monkeypatch):
    assert not _threaded_gateway_server(_args("run", "--no-sandbox", "gateway", "relay"))
    assert not _threaded_gateway_server(_args("run"))
    monkeypatch.setenv("HUB_BROKER_URL", "memory://")
    assert not _threaded_gateway_server(_args("run", "gateway"))


def test_the_file_or_the_environment_can_keep_nameko(on_rabbitmq, monkeypatch, tmp_path):
    monkeypatch.setenv("HUB_GATEWAY_SERVER", "nameko")
    assert not _threaded_gateway_server(_args("run", "--no-sandbox", "gateway"))
    monkeypatch.delenv("HUB_GATEWAY_SERVER")
    path = tmp_path / "config.yaml"
    path.write_text(TEXT.replace("max_body_bytes: 1000000}", "max_body_bytes: 1000000, server: nameko}"))
    assert not _threaded_gateway_server(_args("run", "--no-sandbox", "gateway", "--config", str(path)))
    path.write_text(TEXT.replace("max_body_bytes: 1000000}", "max_body_bytes: 1000000, server: gunicorn}"))
    assert _threaded_gateway_server(_args("run", "--no-sandbox", "gateway", "--config", str(path))) == "gunicorn"


def test_a_broken_file_is_left_for_the_config_loader_to_report(on_rabbitmq, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("hub: [unclosed\n")
    assert _threaded_gateway_server(_args("run", "--no-sandbox", "gateway", "--config", str(path))) == "granian"
