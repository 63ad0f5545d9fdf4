"""The one command line: `hub run|up|demo|db upgrade|check-config|resync|dlq|sandbox|broker setup`."""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:          # the commands import what they use when they run: `hub --help` stays fast
    from nameko.runners import ServiceRunner

    from hub.bootstrap import HubContext
    from hub.config import HubConfig
    from sandbox.runner import Sandbox

# eventlet and pkg_resources announce their own deprecation at import; not our users' concern.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return register


@command("check-config")
def check_config(args: argparse.Namespace) -> int:
    from connectors.registry import check_system, check_wiring
    from hub.config import ConfigError, load_config
    from mappings.validation import validate_mappings

    problems: list[tuple[str, str]] = []
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        problems.extend(exc.problems)
    else:
        for name, system in cfg.systems.items():    # each connector checks its own block
            problems.extend(check_system(name, system))
        problems.extend(check_wiring(cfg))           # which systems serve which store and channel
    problems.extend(validate_mappings())
    problems.extend(_ca_bundle())
    for path, message in problems:
        print(f"{path}: {message}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print("config ok")
    return 0


def _ca_bundle() -> list[tuple[str, str]]:
    """A private CA (an ERP behind the company's own TLS) is trusted through REQUESTS_CA_BUNDLE: say which."""
    import os

    bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    if not bundle:
        return []
    if not os.path.isfile(bundle):
        return [("REQUESTS_CA_BUNDLE", f"no CA bundle file at {bundle}")]
    print(f"trusting the CA bundle at {bundle} (REQUESTS_CA_BUNDLE) for every HTTPS call")
    return []


@command("db")
def db(args: argparse.Namespace) -> int:
    from hub.bootstrap import build_context

    ctx = build_context(upgrade=True)
    print(f"database at head: {ctx.engine.url.render_as_string(hide_password=True)}")
    return 0


@command("sandbox")
def sandbox_cmd(args: argparse.Namespace) -> int:
    import time

    from sandbox.runner import start_sandbox

    with start_sandbox(callback_base=args.callback_base, fixed_ports=True) as sandbox:
        for name, sim in sandbox.simulators.items():
            print(f"{name:<15} {sim.base_url}")
        print("sandbox running; Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


@command("demo")
def demo(args: argparse.Namespace) -> int:
    import os

    from hub.logs import configure
    from sandbox.demo import run_demo
    from workers import SERVICES
    from workers.runner import build_runner

    configure(level=os.environ.get("HUB_LOG_LEVEL", "WARNING"))   # the story on stdout; warnings (redacted) on stderr
    if "HUB_LOG_LEVEL" not in os.environ:
        # nameko warns for every timer thread it kills while stopping a container: the demo's normal end.
        logging.getLogger("nameko.containers").setLevel(logging.ERROR)
    return run_demo(list(SERVICES), lambda names, address: build_runner(names, "memory://", http_address=address),
                    verbose=not args.quiet)


def _green() -> None:
    """nameko runs on eventlet: patch before anything opens a socket, and make psycopg2 cooperative."""
    import eventlet

    eventlet.monkey_patch()
    try:
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
    except ImportError:  # psycogreen is a dependency; without it PostgreSQL calls just block the hub
        pass


def _sandbox_alongside(fixed_ports: bool = True, config_path: str | None = None) -> Sandbox:
    """The simulators in this process, with their own credentials exported for the hub (and its children).

    They are told the hub's own address: a simulator that calls back to an account-wide URL (Shansong's is
    configured at the courier, not sent with each order) would otherwise have nowhere to post, and its
    orders would stay `dispatched` for good. The platform signs its pushes over the address registered with
    it, so that too is this hub's (unless the environment names another)."""
    import os

    from sandbox.credentials import sandbox_env
    from sandbox.runner import start_sandbox

    for k, v in sandbox_env().items():
        os.environ.setdefault(k, v)
    base = _hub_base_of(config_path)
    os.environ.setdefault("HUB_MEITUAN_PUSH_URL", f"{base}/callbacks/meituan")
    sandbox = start_sandbox(callback_base=base, fixed_ports=fixed_ports)
    for k, v in sandbox.env().items():
        os.environ.setdefault(k, v)
    return sandbox


def _hub_base_of(config_path: str | None) -> str:
    """The hub's HTTP address as its gateway will bind it (`HUB_HTTP_PORT` over `hub.http`), read before the
    config is validated (the sandbox's secrets are exported first); a wildcard host is reached on loopback."""
    import os

    http = ((_raw_config(config_path).get("hub") or {}).get("http") or {})
    host = str(http.get("host") or "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    port = os.environ.get("HUB_HTTP_PORT") or http.get("port") or 8000
    return f"http://{host}:{port}"


def _migrated_context(config_path: str | None, sandbox: Sandbox | None) -> HubContext:
    """Migrate once before any service starts (waiting for the database if it is away); bind the sandbox."""
    from connectors.registry import build_connector
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.consumers import wait_out_outage

    cfg = load_config(config_path)
    ctx = wait_out_outage("connecting to the database", lambda: build_context(cfg, connectors=build_connector))
    if sandbox is not None:
        _bind_sandbox(ctx, sandbox)
    ctx.engine.dispose()
    return ctx


def _logging() -> None:
    from hub.logs import configure

    configure()            # HUB_LOG_LEVEL, HUB_LOG_FORMAT=text|json


@command("run")
def run(args: argparse.Namespace) -> int:
    from workers import SERVICES
    from workers.runner import build_runner, run_forever

    _logging()
    from workers.cpu_profile import install_from_env
    from workers.telemetry import setup_tracing

    install_from_env()                                  # HUB_CPU_PROFILE: the bench's --profile

    setup_tracing(args.services or list(SERVICES))     # off unless OTEL_EXPORTER_OTLP_ENDPOINT / HUB_TRACE_FILE
    embedded = _broker_of(args.config).startswith("memory://") and not args.no_sandbox
    # Embedded default: the simulators run alongside on their fixed ports, with their own credentials.
    sandbox = _sandbox_alongside(config_path=args.config) if embedded else None
    cfg = _migrated_context(args.config, sandbox).config
    names = args.services or list(SERVICES)
    if getattr(args, "gateway_server", None):
        return _serve_gateway(args.config, cfg, args.gateway_server)

    def make_runner() -> ServiceRunner:
        return build_runner(names, cfg.hub.broker_url, config_path=args.config,
                            http_address=f"{cfg.hub.http.host}:{cfg.hub.http.port}")

    try:
        run_forever(make_runner, f"hub: running {', '.join(names)} on {cfg.hub.broker_url.split('@')[-1]}")
    finally:
        if sandbox:
            sandbox.stop()
    return 0


def _threaded_gateway_server(args: argparse.Namespace) -> str | None:
    """"granian" or "gunicorn" for `hub run gateway` alone on RabbitMQ with `hub.http.server` set so (granian is
    the default; HUB_GATEWAY_SERVER overrides): real threads, not eventlet, so nothing is monkey-patched. None
    for nameko's entrypoint and everything else. Read before the config is validated, since the patching (or
    not) comes before pydantic is imported."""
    import os

    if args.command != "run" or args.services != ["gateway"] or _broker_of(args.config).startswith("memory://"):
        return None
    server = os.environ.get("HUB_GATEWAY_SERVER") or str(
        (((_raw_config(args.config).get("hub") or {}).get("http") or {}).get("server")) or "granian")
    return server if server in ("gunicorn", "granian") else None


def _serve_gateway(config_path: str | None, cfg: HubConfig, server: str) -> int:
    from workers.embedded import nameko_config
    from workers.gateway_api import build_gateway_api

    http = cfg.hub.http
    config = nameko_config(cfg.hub.broker_url, HUB_CONFIG_PATH=config_path)
    announce = f"hub: running gateway ({server}, {http.threads} threads) on {http.host}:{http.port}"
    if server == "granian":
        from workers import granian_server

        # The API is built in granian's worker, after its fork: its pools are that process's own.
        return granian_server.serve(lambda: build_gateway_api(config), http.host, http.port, http.threads, announce)
    from workers import http_server

    http_server.serve(build_gateway_api(config), http.host, http.port, http.threads, announce)
    return 0


@command("up")
def up(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from workers import SERVICES
    from workers.supervisor import Supervisor, parse_replicas

    _logging()
    if _broker_of(args.config).startswith("memory://"):
        print("hub up runs every service in its own process, which needs RabbitMQ: set HUB_BROKER_URL=amqp://… "
              "(and HUB_DATABASE_URL=postgresql+psycopg2://…); `hub run` is the one-process embedded mode",
              file=sys.stderr)
        return 2
    sandbox = (_sandbox_alongside(fixed_ports=not args.sandbox_free_ports, config_path=args.config)
               if args.sandbox else None)
    try:
        from hub.config import load_config
        from hub.metrics import MULTIPROC_ENV, prepare_multiproc_dir
        from workers.local_services import ensure_local_services

        hub_cfg = load_config(args.config).hub
        # PostgreSQL, RabbitMQ and Redis on this machine are started if they are down (remote ones never).
        ensure_local_services(hub_cfg.database_url, hub_cfg.broker_url, hub_cfg.redis_url)
        # One metrics directory shared by every replica, emptied before the first starts: /metrics adds them up.
        os.environ.setdefault(MULTIPROC_ENV, str(Path("var/prometheus").resolve()))
        prepare_multiproc_dir(os.environ[MULTIPROC_ENV])
        cfg = _migrated_context(args.config, sandbox).config
        names = args.services or list(SERVICES)
        unknown = [n for n in names if n not in SERVICES]
        try:
            extra = parse_replicas(args.replicas or "")
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        unknown += [n for n in extra if n not in SERVICES]
        if unknown:
            print(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}", file=sys.stderr)
            return 2
        replicas = {n: extra.get(n, cfg.hub.replicas.get(n, 1)) for n in names}
        log_dir = Path(args.log_dir) if args.log_dir else None
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        supervisor = Supervisor(replicas, dict(os.environ), config_path=args.config, log_dir=log_dir)
        print("hub: up: " + ", ".join(f"{n} x{k}" for n, k in replicas.items() if k) +
              f" on {cfg.hub.broker_url.split('@')[-1]}", flush=True)
        supervisor.run()
    finally:
        if sandbox is not None:
            sandbox.stop()
    return 0


def _broker_of(config_path: str | None) -> str:
    """The broker URL, read before the config is validated (the sandbox's secrets may be needed first)."""
    import os

    if os.environ.get("HUB_BROKER_URL"):
        return os.environ["HUB_BROKER_URL"]
    return str((_raw_config(config_path).get("hub") or {}).get("broker_url", ""))


def _raw_config(config_path: str | None) -> dict:
    """config.yaml as written, before validation: what must be known before the sandbox's secrets are exported
    or eventlet patches. A file that is missing or not YAML reads as empty here; loading it reports why."""
    import os
    from pathlib import Path

    import yaml

    # hub.config's DEFAULT_CONFIG_PATH, not imported: this runs before eventlet patches, pydantic after it.
    default = Path(__file__).resolve().parent.parent / "config.yaml"
    try:
        raw = yaml.safe_load(Path(config_path or os.environ.get("HUB_CONFIG") or default).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _bind_sandbox(ctx: HubContext, sandbox: Sandbox) -> None:
    """Bind the simulators' ids and take the ERP's catalogue and warehouse stock, so a first try has data."""
    from hub.flows.erp_pull import pull_products, pull_warehouse_stock
    from hub.storage.bindings import SqlBinder
    from sandbox.bindings import bind_sandbox

    skus = [item.item_no for item in sandbox.erp.catalogue]
    bind_sandbox(SqlBinder(ctx.session_factory), sandbox, skus)
    print(f"hub: sandbox ready; {pull_products(ctx)} products and {pull_warehouse_stock(ctx)} warehouse "
          "stock lines pulled from the ERP simulator", flush=True)


@command("broker")
def broker(args: argparse.Namespace) -> int:
    from hub.config import load_config
    from workers.broker import declare_all
    from workers.embedded import nameko_config
    from workers.runner import all_service_classes

    url = load_config(args.config).hub.broker_url
    n = declare_all(url, all_service_classes(), nameko_config(url).get("TRANSPORT_OPTIONS"))
    print(f"declared the hub.events exchange and {n} durable queues")
    return 0


@command("dlq")
def dlq(args: argparse.Namespace) -> int:
    from connectors.registry import build_connector
    from hub import consumers, handlers
    from hub.bootstrap import build_context
    from hub.config import load_config

    ctx = build_context(load_config(args.config), connectors=build_connector)
    if args.action == "list":
        rows = consumers.dead_letters(ctx)
        for r in rows:
            print(f"{r.id}\t{r.target}\t{r.kind}\tattempts={r.attempts}\tfirst={r.first_failed_at:%Y-%m-%d %H:%M:%S}"
                  f"\tlast={r.last_failed_at:%Y-%m-%d %H:%M:%S}\t{r.error[:120]}")
        print(f"{len(rows)} dead letter(s)")
        return 0
    ids = [r.id for r in consumers.dead_letters(ctx)] if args.all else [int(args.id)]
    failed: list[int] = []
    with _bar(len(ids), "replaying", "letter") as bar:
        for i in ids:
            try:
                ok = consumers.replay(ctx, i, handlers.BY_NAME, resend=args.resend)
            except consumers.ResendNotConfirmed as exc:      # asked first: the ERP may hold it already
                print(exc, file=sys.stderr)
                ok = False
            if not ok:
                failed.append(i)
            bar.update(1)
            bar.set_postfix(failed=len(failed))
    print(f"{len(ids) - len(failed)} replayed and removed, {len(failed)} still failing (kept)"
          + (f": {', '.join(map(str, failed[:20]))}" if failed else ""))
    return 1 if failed else 0


def _bar(total: int, what: str, unit: str):
    """A progress bar on stderr (drawn only on a terminal; a summary line is printed either way)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit=unit, disable=None, file=sys.stderr)


@command("resync")
def resync(args: argparse.Namespace) -> int:
    import time

    from connectors.registry import build_connector
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.flows import erp_pull

    started = time.monotonic()
    ctx = build_context(load_config(args.config), connectors=build_connector)
    print("products: pulling the ERP's product master…", file=sys.stderr, flush=True)
    products = erp_pull.pull_products(ctx)
    lines = 0                  # counted here: off a terminal the bar is disabled and its own count stays 0
    with _bar(0, "warehouse stock", "line") as bar:
        def step(done: int, total: int) -> None:
            nonlocal lines
            bar.total = total
            bar.update(done - lines)
            lines = done

        counts = erp_pull.pull_warehouse_stock(ctx, progress=step)
    print(f"resync done in {time.monotonic() - started:.1f} s: {products} SKU(s) added or changed; "
          f"{lines} warehouse stock line(s) read, {counts} count(s) applied")
    return 0


def _bill_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


@command("reconcile")
def reconcile_cmd(args: argparse.Namespace) -> int:
    from connectors.registry import build_connector
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.domain.errors import BadInput
    from hub.services import payment_reconciliation

    ctx = build_context(load_config(args.config), connectors=build_connector)
    if args.what == "orders":                 # each channel's orders since its cursor, now (after an outage)
        from hub.flows import order_pull

        pulled = order_pull.pull_channel_orders(ctx)
        for p in pulled:
            print(f"{p.channel} ({p.system}): {p.listed} listed, {p.missed} the pushes missed, {p.refused} refused; "
                  f"cursor {p.cursor_at.isoformat(timespec='seconds')}")
        failed = {c.id for c in ctx.config.channels if c.publish_to} - {p.channel for p in pulled}
        for channel in sorted(failed):
            print(f"{channel}: the pull failed (see the log); its cursor stays", file=sys.stderr)
        return 1 if failed else 0
    day = args.date or payment_reconciliation.yesterday()
    try:
        runs = payment_reconciliation.reconcile(ctx, day, trigger="cli", system=args.system)
    except BadInput as exc:
        print(f"hub reconcile payments: {exc}", file=sys.stderr)
        return 2
    for r in runs:
        print(f"{r.system} {r.bill_date}: {r.status}, {r.differences} difference(s), {r.repaired} repaired"
              + (f" — {r.error}" if r.error else "") + f" (run {r.run_id})")
    return 1 if any(r.status == "error" for r in runs) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="O2O Hub: stock and orders in sync")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-config", help="validate config.yaml (and the mappings) and list every problem")
    p.add_argument("file", nargs="?", help="config file (default: config.yaml or $HUB_CONFIG)")
    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"])
    p = sub.add_parser("run", help="run the services (all, or the named ones) in this process")
    p.add_argument("services", nargs="*", help="service names (default: all)")
    p.add_argument("--config", help="config file")
    p.add_argument("--no-sandbox", action="store_true", help="embedded mode without the simulators")
    p = sub.add_parser("up", help="production: every service in its own supervised process (RabbitMQ + PostgreSQL)")
    p.add_argument("services", nargs="*", help="service names (default: all)")
    p.add_argument("--config", help="config file")
    p.add_argument("--replicas", help="processes per service, e.g. gateway=2,relay=2 (default: hub.replicas, else 1)")
    p.add_argument("--sandbox", action="store_true", help="the simulators alongside, bound and seeded")
    p.add_argument("--sandbox-free-ports", action="store_true", help="simulators on free ports, not their fixed ones")
    p.add_argument("--log-dir", help="one log file per process here (default: this terminal / the journal)")
    p = sub.add_parser("broker", help="declare the exchange and every durable queue")
    p.add_argument("action", choices=["setup"])
    p.add_argument("--config")
    p = sub.add_parser("dlq", help="dead letters: list, or replay one (ID) or all (--all)")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("id", nargs="?")
    p.add_argument("--all", action="store_true")
    p.add_argument("--resend", action="store_true",
                   help="also resend letters of unknown outcome (check the other system first)")
    p.add_argument("--config")
    p = sub.add_parser("reconcile", help="payments: compare the payment systems' daily bills with the hub (default: "
                                         "yesterday); orders: pull each channel's orders changed since its cursor now")
    p.add_argument("what", choices=["payments", "orders"])
    p.add_argument("--date", type=_bill_day, help="the bill's day, YYYY-MM-DD")
    p.add_argument("--system", help="one payment system (default every one)")
    p.add_argument("--config")
    p = sub.add_parser("resync", help="pull the ERP's product master and warehouse stock now")
    p.add_argument("--config")
    p = sub.add_parser("sandbox", help="run every simulator on its fixed port until Ctrl-C")
    p.add_argument("--callback-base", default="http://127.0.0.1:8000", help="the hub's URL for callbacks")
    p = sub.add_parser("demo", help="play a short scripted day on the embedded mode")
    p.add_argument("--quiet", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.gateway_server = _threaded_gateway_server(args)       # decided once: it says whether to patch
    if args.command == "demo" or (args.command == "run" and not args.gateway_server):
        _green()                      # before pydantic, SQLAlchemy or kombu are imported
    from hub.config import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
