"""The test run's parallel workers (pytest-xdist): each one its own PostgreSQL database and RabbitMQ vhost.

`make test` runs the suite on several workers; a worker named `gw1` uses `hub_test_gw1` and the vhost
`hub_test_gw1` beside the run's own `hub_test`, created when missing. Run serially, nothing is rewritten."""
from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit


def _renamed(url: str, worker: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_{worker}"
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _create_database(url: str, name: str) -> None:
    import psycopg2

    parts = urlsplit(url.replace("postgresql+psycopg2", "postgresql"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def _create_vhost(name: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listed = subprocess.run([ctl, "-q", "list_vhosts"], capture_output=True, text=True, check=True).stdout
    if name not in listed.split():
        subprocess.run([ctl, "-q", "add_vhost", name], capture_output=True, check=True)
        subprocess.run([ctl, "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
                       capture_output=True, check=True)


def isolate_this_worker() -> None:
    """Point HUB_TEST_DATABASE_URL / HUB_TEST_BROKER_URL at this xdist worker's own database and vhost."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or os.environ.get("HUB_TEST_WORKER_ISOLATED") == worker:
        return
    db_url = os.environ.get("HUB_TEST_DATABASE_URL")
    if db_url:
        url, name = _renamed(db_url, worker)
        _create_database(url, name)
        os.environ["HUB_TEST_DATABASE_URL"] = url
    broker_url = os.environ.get("HUB_TEST_BROKER_URL")
    if broker_url:
        url, name = _renamed(broker_url, worker)
        _create_vhost(name)
        os.environ["HUB_TEST_BROKER_URL"] = url
    os.environ["HUB_TEST_WORKER_ISOLATED"] = worker
