"""How long the hub's three flows are, counted by running them (issue 20: "the event path cannot be followed
by reading"; target per flow: <= 12 files from entrypoint to effect, <= 3 returns to a file already left).

    PYTHONPATH=. python scripts/flow_length.py [--sequence]

Each flow runs in this process on the embedded mode: a fresh SQLite file, kombu's in-memory broker and the
simulators on loopback, driven the way production drives it, synchronously:

- HTTP in: nameko's handler method of `workers/gateway.py` (`GatewayService.any_path`) with the API the gateway
  builds, on a werkzeug request;
- the outbox: `workers/relay.py` `relay_once` publishing to the in-memory broker;
- the consumer: the message taken off its queue and handed to the service's nameko entrypoint
  (`handle_message`; the batch handler of `workers/subscribe.py` flushed as its timer would), whose worker runs
  in this thread (nameko's worker pool replaced by a direct call).

The flows:
- POS sale -> shop push: `POST /api/v1/stores/S001/sales`, relayed, `stock_to_shop` pushing the shop's figure;
- pickup order -> POS: `POST /api/v1/orders` (pickup at S001), WeChat Pay's signed notification on
  `POST /callbacks/wechat_pay`, relayed, `store_order_to_pos` pushing the order to the store's till;
- rider callback -> order: Dada's signed callback (rider accepted) on `POST /callbacks/local_delivery` for a
  booked delivery, the claim confirmed with Dada's status query, the order's change committed.

While a flow runs, `sys.setprofile` (Python 3.11: no sys.monitoring) records every Python call into a source file
under hub/, connectors/, mappings/ or workers/, leaving out the observability modules (logs, metrics, tracing,
privacy, metered, telemetry: each wraps every path alike). Consecutive calls into one file are one entry. Per
flow: *files* is the number of distinct files (listed in first-entry order), *returns* the number of entries into
a file the sequence had already left for another — counted per transition, so a small module every layer calls
(config, tables, the unit of work) is returned to many times. Only calls are recorded, so coming back up to a
caller is no entry; but a caller that then calls a function of its own file is one. The second figure counts
only calls made from another file (the nearest counted frame below the call), which leaves those out. Each flow
runs once unrecorded first (imports, caches, connections warm), then recorded. `--sequence` prints the recorded
sequence too.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TRACKED = ("hub", "connectors", "mappings", "workers")
LEFT_OUT = frozenset({"hub/logs.py", "hub/metrics.py", "hub/tracing.py", "hub/privacy.py", "hub/metered.py",
                      "workers/telemetry.py"})


# -- counting ---------------------------------------------------------------------------------------------------

@dataclass
class Length:
    files: list[str]                 # distinct files, in first-entry order
    returns: int                     # entries into a file already left
    sequence: list[str]              # the recorded files, consecutive repeats folded
    returns_into: dict[str, int] = field(default_factory=dict)      # file -> its returns, most first

    def __str__(self) -> str:
        return f"{len(self.files)} files, {self.returns} returns"


def fold_repeats(entries: Iterable[str]) -> list[str]:
    """Consecutive entries into one file are one."""
    folded: list[str] = []
    for f in entries:
        if not folded or folded[-1] != f:
            folded.append(f)
    return folded


def measure(entries: Iterable[str]) -> Length:
    """Files and returns of a recorded sequence of files entered."""
    sequence = fold_repeats(entries)
    seen: dict[str, None] = {}
    into: dict[str, int] = {}
    for f in sequence:
        if f in seen:                    # no two consecutive entries are one file: this one was left before
            into[f] = into.get(f, 0) + 1
        else:
            seen[f] = None
    ranked = dict(sorted(into.items(), key=lambda kv: (-kv[1], kv[0])))
    return Length(list(seen), sum(into.values()), sequence, ranked)


def cross_file(entries: Iterable[str], callers: Iterable[str | None]) -> list[str]:
    """Only the calls made from another file (or from outside the counted files): a file calling its own
    functions again after a call out has returned is still where it was (coming back up is no entry)."""
    return [f for f, caller in zip(entries, callers, strict=True) if f != caller]


def tracked_file(filename: str, root: Path = ROOT) -> str | None:
    """`filename` relative to the repository if the flows count it, else None."""
    try:
        rel = Path(filename).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    if rel.split("/", 1)[0] not in TRACKED or rel in LEFT_OUT or not rel.endswith(".py"):
        return None
    return rel


class Recorder:
    """The files entered by Python calls while recording (this thread and threads started meanwhile)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled               # False: the warm-up run, nothing recorded
        self.entries: list[str] = []             # the file each recorded call entered
        self.callers: list[str | None] = []      # the counted file it was called from (None: from outside)
        self.other_threads: set[str] = set()
        self._names: dict[str, str | None] = {}
        self._on = False
        self._main = threading.get_ident()

    def _file(self, filename: str) -> str | None:
        rel = self._names.get(filename, "")
        if rel == "":
            rel = self._names[filename] = tracked_file(filename)
        return rel

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        if event != "call" or not self._on:
            return
        rel = self._file(frame.f_code.co_filename)
        if rel is None:
            return
        caller, caller_file = frame.f_back, None       # the nearest counted frame below: who called in
        while caller is not None and (caller_file := self._file(caller.f_code.co_filename)) is None:
            caller = caller.f_back
        self.entries.append(rel)
        self.callers.append(caller_file)
        if threading.get_ident() != self._main:
            self.other_threads.add(threading.current_thread().name)

    @contextmanager
    def recording(self) -> Iterator[Recorder]:
        self.entries, self.callers, self.other_threads = [], [], set()
        if not self.enabled:
            yield self
            return
        self._on = True
        threading.setprofile(self._hook)
        sys.setprofile(self._hook)
        try:
            yield self
        finally:
            sys.setprofile(None)
            threading.setprofile(None)       # type: ignore[arg-type]
            self._on = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The script's own look-ups between a flow's steps (not the flow's path)."""
        was, self._on = self._on, False
        try:
            yield
        finally:
            self._on = was


# -- the embedded hub -------------------------------------------------------------------------------------------

@dataclass
class EmbeddedHub:
    ctx: Any
    sandbox: Any
    gateway: Any
    broker: Any
    keys: dict[str, str]
    services: dict[str, Any] = field(default_factory=dict)

    def http(self, method: str, path: str, key: str | None = None, body: bytes | dict | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request through the gateway's nameko handler method; (status, JSON answer)."""
        from werkzeug.test import EnvironBuilder
        from werkzeug.wrappers import Request

        from workers.gateway import GatewayService

        heads = dict(headers or {})
        if key is not None:
            heads["Authorization"] = f"Bearer {self.keys[key]}"
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        if isinstance(body, dict):
            heads.setdefault("Content-Type", "application/json")
        request = Request(EnvironBuilder(path=path, method=method, headers=heads, data=data).get_environ())
        response = GatewayService.any_path(self.gateway, request, path.lstrip("/"))
        text = response.get_data(as_text=True)
        try:
            return response.status_code, json.loads(text) if text else None
        except ValueError:
            return response.status_code, text

    def listen(self, consumer_name: str) -> Listener:
        """The consumer's queue bound (only it: the rest of what the relay publishes is dropped) and emptied,
        its service's entrypoint ready; done before a flow's recording starts (the script's set-up)."""
        from hub import handlers

        consumer = handlers.BY_NAME[consumer_name]
        return Listener(self, self.broker.queue_for(consumer), self.broker.entrypoint_for(consumer, self.ctx))


@dataclass
class Listener:
    hub: EmbeddedHub
    queue: Any
    entrypoint: Any

    def relay(self) -> int:
        """Publish the outbox (`relay_once`) and hand the queue's messages to the service's entrypoint, as
        nameko would; how many messages it got."""
        from workers.relay import relay_once

        while relay_once(self.hub.ctx, self.hub.broker.publisher):
            pass
        got = 0
        while (message := self.queue.get(no_ack=False)) is not None:
            got += 1
            self.entrypoint.handle_message(message.decode(), message)
        if getattr(self.entrypoint, "_pending", None):
            self.entrypoint._flush()          # what the batch window's timer does
        return got


class MemoryBroker:
    """kombu's in-memory transport with the one queue a flow's consumer reads bound; the consumer's service as a
    nameko container whose workers run in the caller's thread."""

    URL = "memory://"

    def __init__(self) -> None:
        from kombu import Connection
        from nameko.standalone.events import get_event_exchange

        from workers import EVENT_SOURCE
        from workers.embedded import install
        from workers.relay import OutboxPublisher

        install()
        self.conn = Connection(self.URL)
        self.channel = self.conn.channel()
        get_event_exchange(EVENT_SOURCE, {})(self.channel).declare()
        self.publisher = OutboxPublisher(self.URL)
        self._containers: dict[str, Any] = {}
        self._bound: dict[str, Any] = {}

    def service_class(self, consumer: Any) -> type:
        from workers.runner import all_service_classes

        return next(c for c in all_service_classes() if c.name == consumer.service)

    def queue_for(self, consumer: Any) -> Any:
        from workers.broker import event_queues
        from workers.subscribe import method_name

        name = method_name(consumer)
        cls = self.service_class(consumer)
        [queue] = [q for q in event_queues([cls]) if q.name.endswith(f"--{cls.name}.{name}")]
        if queue.name not in self._bound:
            for other in self._bound.values():      # one flow, one queue: the others unbound, emptied
                other.delete()
            self._bound = {queue.name: queue(self.channel)}
            self._bound[queue.name].declare()
        bound = self._bound[queue.name]
        bound.purge()
        return bound

    def entrypoint_for(self, consumer: Any, ctx: Any) -> Any:
        from nameko.containers import ServiceContainer

        from workers.embedded import nameko_config
        from workers.subscribe import method_name

        cls = self.service_class(consumer)
        container = self._containers.get(cls.name)
        if container is None:
            container = ServiceContainer(cls, nameko_config(self.URL))
            service = cls()
            service.hub = ctx                       # what HubCore gives each worker

            def spawn_worker(entrypoint: Any, args: tuple, kwargs: dict, context_data: Any = None,
                             handle_result: Callable[..., Any] | None = None) -> None:
                result, exc_info = None, None
                try:
                    result = getattr(service, entrypoint.method_name)(*args, **kwargs)
                except Exception:
                    exc_info = sys.exc_info()
                if handle_result is not None:
                    handle_result(None, result, exc_info)
                if exc_info is not None:
                    raise exc_info[1]

            container.spawn_worker = spawn_worker
            self._containers[cls.name] = container
        name = method_name(consumer)
        return next(e for e in container.entrypoints if e.method_name == name)


def start_hub(workdir: Path) -> EmbeddedHub:
    from connectors.registry import build_connector
    from hub.api.app import build_api, build_deps
    from hub.bootstrap import build_context
    from hub.config import DEFAULT_CONFIG_PATH, parse_config
    from hub.domain.model import StockCount
    from hub.services import inventory
    from hub.storage.bindings import SqlBinder
    from sandbox.bindings import bind_sandbox
    from sandbox.runner import start_sandbox
    from tests.support import CATALOG, always_open, config_env, seed_catalog
    from workers.gateway import GatewayService
    from workers.relay import relay_once

    sandbox = start_sandbox(only=["pos", "wechat_pay", "local_delivery", "sf_same_city", "shansong", "express",
                                  "erp", "crm", "wechat_shop", "meituan"])
    sandbox.local_delivery.step_s = None          # the script moves the rider itself
    sandbox.express.auto_step_s = None
    sandbox.wechat_pay.knobs.refund_notify_after_s = None
    url = f"sqlite:///{workdir}/hub.sqlite"
    # The callbacks the hub hands the couriers point at a closed port: nothing else on this machine is called.
    text = always_open(Path(DEFAULT_CONFIG_PATH).read_text()).replace("port: 8000,", "port: 9,")
    cfg = parse_config(text, env={**config_env(text), **sandbox.env(), "HUB_DATABASE_URL": url})
    ctx = build_context(cfg, url, connectors=build_connector)
    seed_catalog(ctx)
    skus = [s.code for s in CATALOG]
    bind_sandbox(SqlBinder(ctx.session_factory), sandbox, skus)
    long_ago = datetime.now(UTC) - timedelta(days=1)
    with ctx.uow() as uow:
        for location in ("S001", "S002", "WH01"):
            for sku in skus:
                inventory.apply_count(uow, StockCount("script", f"count-{sku}-{location}", sku, location, 1000,
                                                      long_ago))
        uow.commit()
    gateway = GatewayService()
    gateway.api = build_api(ctx, build_deps(ctx))      # what the gateway's HubApi gives its workers
    keys = {"channel": cfg.channel("miniprogram").key, **{s.id: s.pos_key for s in cfg.stores}}
    hub = EmbeddedHub(ctx, sandbox, gateway, MemoryBroker(), keys)
    while relay_once(ctx, hub.broker.publisher):      # the counts' events: no queue bound yet, dropped
        pass
    return hub


# -- the three flows --------------------------------------------------------------------------------------------

def pos_sale(hub: EmbeddedHub, rec: Recorder) -> None:
    sale = {"receipt_id": f"R-{uuid.uuid4().hex[:10]}", "sold_at": datetime.now(UTC).isoformat(),
            "lines": [{"sku": "TEA-001", "qty": 1}]}
    consumer = hub.listen("stock_to_shop")
    with rec.recording():
        status, answer = hub.http("POST", "/api/v1/stores/S001/sales", "S001", sale)
        assert status == 201, answer
        assert consumer.relay() == 1
    with rec.paused():
        figure = hub.sandbox.wechat_shop.stock_of("TEA-001", "S001")
        assert figure == answer["lines"][0]["on_hand"] - hub.ctx.config.channel("miniprogram").safety_stock, figure


def pickup_order(hub: EmbeddedHub, rec: Recorder) -> None:
    from hub.services import orders

    order = {"lines": [{"sku": "CUP-002", "qty": 1}], "buyer": {"id": "u-1", "name": "Han Meimei",
                                                                "phone": "13900001111"},
             "fulfillment": {"type": "pickup", "store_id": "S001"}}
    consumer = hub.listen("store_order_to_pos")
    with rec.recording():
        status, answer = hub.http("POST", "/api/v1/orders", "channel", order,
                                  headers={"Idempotency-Key": uuid.uuid4().hex})
        assert status == 201, answer
        with rec.paused():                       # the payment platform's side: its signed notification
            order_id = answer["order_id"]
            with hub.ctx.uow() as uow:
                total = orders.get(uow, order_id).total_fen
            pay = hub.sandbox.wechat_pay
            body = pay.notification_body(order_id, total, transaction_id=f"4200{order_id}",
                                         payer_openid="oPayer-1")
            headers = {**pay.sign(body), "Content-Type": "application/json"}
        status, answer = hub.http("POST", "/callbacks/wechat_pay", None, body, headers)
        assert status == 200, answer
        assert consumer.relay() >= 1
    with rec.paused():
        assert hub.sandbox.pos.order_for(order_id) is not None, "the order is not at the POS"


def rider_callback(hub: EmbeddedHub, rec: Recorder) -> None:
    from hub.services import orders

    with rec.paused():                           # a delivery order, paid, its rider booked: not counted
        order = {"lines": [{"sku": "POT-003", "qty": 1}], "buyer": {"id": "u-2", "name": "Li Lei",
                                                                    "phone": "13700137000"},
                 "fulfillment": {"type": "delivery", "address": {
                     "text": "88 Changde Road, Jing'an, Shanghai", "lat": 31.2301, "lng": 121.4456,
                     "name": "Li Lei", "phone": "13700137000"}}}
        status, answer = hub.http("POST", "/api/v1/orders", "channel", order,
                                  headers={"Idempotency-Key": uuid.uuid4().hex})
        assert status == 201, answer
        order_id = answer["order_id"]
        with hub.ctx.uow() as uow:
            row = orders.get(uow, order_id, lock=True)
            orders.mark_paid(uow, row, "wechat_pay", f"4200{order_id}", payer_id="oPayer-2")
            uow.commit()
        hub.listen("delivery_to_courier").relay()
        dada = hub.sandbox.local_delivery
        assert dada.deliveries[order_id].booked, "no rider booked"
        [callback] = dada.advance(order_id, 2)             # a rider accepted: Dada calls back
        body = json.dumps(callback.body, ensure_ascii=False).encode()
    with rec.recording():
        status, answer = hub.http("POST", "/callbacks/local_delivery", None, body,
                                  {"Content-Type": "application/json"})
        assert status == 200, answer
    with rec.paused():
        with hub.ctx.uow() as uow:
            assert orders.get(uow, order_id).status == "rider_assigned"


FLOWS: dict[str, Callable[[EmbeddedHub, Recorder], None]] = {
    "POS sale -> shop push": pos_sale,
    "pickup order -> POS": pickup_order,
    "rider callback -> order": rider_callback,
}


def run(show_sequence: bool = False) -> dict[str, Length]:
    import hub

    if not Path(hub.__file__).resolve().is_relative_to(ROOT):     # another checkout's files would count as none
        raise SystemExit(f"hub is imported from {hub.__file__}, not from {ROOT}: run with PYTHONPATH={ROOT}")
    lengths: dict[str, Length] = {}
    with tempfile.TemporaryDirectory() as workdir:
        hub = start_hub(Path(workdir))
        try:
            for name, flow in FLOWS.items():
                flow(hub, Recorder(enabled=False))     # warm: imports, caches, connections
                rec = Recorder()
                flow(hub, rec)
                lengths[name] = length = measure(rec.entries)
                crossing = measure(cross_file(rec.entries, rec.callers))
                print(f"{name}: {length} ({len(length.returns_into)} files returned to); "
                      f"counting only calls from another file: {crossing.returns} returns "
                      f"({len(crossing.returns_into)} files)")
                for i, f in enumerate(length.files, 1):
                    back = length.returns_into.get(f)
                    print(f"  {i:2}. {f}" + (f"  (returned to {back}x)" if back else ""))
                if show_sequence:
                    print("  sequence: " + " > ".join(length.sequence))
                if rec.other_threads:
                    print(f"  (also entered from threads {sorted(rec.other_threads)})")
        finally:
            hub.sandbox.stop()
            hub.ctx.engine.dispose()
    return lengths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", action="store_true", help="also print each flow's recorded sequence")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    run(args.sequence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
