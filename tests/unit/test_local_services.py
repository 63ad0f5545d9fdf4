"""`hub up` starts a local PostgreSQL, RabbitMQ or Redis that is down, and never touches a remote one."""
from __future__ import annotations

import socket

from workers import local_services


def _recording(monkeypatch) -> list[str]:
    ran: list[str] = []
    monkeypatch.setattr(local_services, "START_COMMANDS",
                        {k: (lambda k=k: ran.append(k) or ["false"]) for k in local_services.START_COMMANDS})
    return ran


def test_a_server_that_answers_is_left_alone(monkeypatch):
    ran = _recording(monkeypatch)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert local_services.ensure_up(f"redis://127.0.0.1:{port}/0")
    assert ran == []


def test_a_remote_server_is_never_started(monkeypatch):
    ran = _recording(monkeypatch)
    assert local_services.ensure_up("postgresql+psycopg2://hub@db.example.internal:1/hub")
    assert local_services.ensure_up("memory://") and local_services.ensure_up("sqlite:///var/hub.sqlite")
    assert ran == []


def test_a_local_server_that_is_down_gets_its_start_command(monkeypatch):
    ran = _recording(monkeypatch)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]              # closed again: nothing listens there
    assert not local_services.ensure_up(f"amqp://guest:guest@127.0.0.1:{port}/hub", wait_s=0.5)
    assert ran == ["amqp"]
