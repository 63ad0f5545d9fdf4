"""A racer process for the reservation concurrency test: N threads, each its own connection,
all released at the same instant, each trying to reserve one unit for its own order."""
from __future__ import annotations

import json
import sys
import threading
import time

from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from hub.domain.errors import InsufficientStock
from hub.services import inventory
from hub.storage.db import make_engine
from hub.storage.uow import UnitOfWork
from tests.support import make_config


def main() -> None:
    url, start_at, order_ids = sys.argv[1], float(sys.argv[2]), sys.argv[3].split(",")
    cfg = make_config(url)
    results: dict[str, int] = {"reserved": 0, "refused": 0, "error": 0}
    lock = threading.Lock()
    ready = threading.Barrier(len(order_ids))

    def attempt(order_id: str) -> None:
        outcome = "error"
        engine = make_engine(url, poolclass=NullPool)
        try:
            conn = engine.connect()               # connected before the start line
            ready.wait()
            time.sleep(max(start_at - time.time(), 0))
            with UnitOfWork(lambda: Session(bind=conn)) as uow:
                inventory.reserve(uow, cfg, order_id, [("TEA-001", "S001", 1)], None)
                uow.commit()
            outcome = "reserved"
        except InsufficientStock:
            outcome = "refused"
        except Exception as exc:  # reported, and the test fails on any error
            print(f"{order_id}: {exc!r}", file=sys.stderr)
        finally:
            engine.dispose()  # closes the connection too
        with lock:
            results[outcome] += 1

    threads = [threading.Thread(target=attempt, args=(oid,)) for oid in order_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
