"""The limit for the ledger: PostgreSQL itself running the sale-shaped transaction (insert a ledger
row, update a stock row, insert an outbox row) with pgbench, on tables of its own in the bench database."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SETUP = """
DROP TABLE IF EXISTS pgb_ledger, pgb_stock, pgb_outbox;
CREATE TABLE pgb_stock (sku int PRIMARY KEY, location_id text NOT NULL, on_hand int NOT NULL);
CREATE TABLE pgb_ledger (id bigserial PRIMARY KEY, sku int NOT NULL, location_id text NOT NULL, qty int NOT NULL,
                         source text NOT NULL, external_id text NOT NULL, occurred_at timestamptz NOT NULL,
                         UNIQUE (source, external_id, sku, location_id));
CREATE TABLE pgb_outbox (id bigserial PRIMARY KEY, message_id uuid NOT NULL UNIQUE, payload jsonb NOT NULL,
                         sent_at timestamptz);
INSERT INTO pgb_stock SELECT g, 'S001', 1000000 FROM generate_series(0, 39) g;
"""

SALE = """
\\set sku random(0, 39)
BEGIN;
INSERT INTO pgb_ledger (sku, location_id, qty, source, external_id, occurred_at)
  VALUES (:sku, 'S001', -1, 'pos:S001', md5(random()::text), now());
UPDATE pgb_stock SET on_hand = on_hand - 1 WHERE sku = :sku;
INSERT INTO pgb_outbox (message_id, payload) VALUES (gen_random_uuid(), '{"type": "stock.changed"}');
END;
"""


def sale_tps(database_url: str, clients: int = 8, seconds: int = 10) -> float:
    """Committed sale-shaped transactions per second."""
    if shutil.which("pgbench") is None:
        raise RuntimeError("pgbench is not installed (it comes with the postgresql package)")
    u = make_url(database_url)
    conn = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    subprocess.run(["psql", *conn, "-q", "-d", u.database, "-c", SETUP], check=True, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(SALE)
        script.flush()
        out = subprocess.run(["pgbench", *conn, "-n", "-c", str(clients), "-j", "2", "-T", str(seconds),
                              "-f", script.name, u.database], check=True, capture_output=True, text=True).stdout
    subprocess.run(["psql", *conn, "-q", "-d", u.database, "-c", "DROP TABLE pgb_ledger, pgb_stock, pgb_outbox"],
                   check=True, capture_output=True)
    match = re.search(r"tps = ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


def ensure_pg_database(url: str) -> None:
    """The bench's PostgreSQL database, created if missing (the load generator's and the scale run's)."""
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("select 1 from pg_database where datname=:d"), {"d": u.database}).scalar():
            conn.execute(text(f'create database "{u.database}"'))
    admin.dispose()
