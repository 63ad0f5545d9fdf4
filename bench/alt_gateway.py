"""`--gateway-server bjoern`: the same API (`hub.api.app.build_api` over the same context, Redis gate and
sold-out cache) behind bjoern (libev, C, one request at a time, SO_REUSEPORT), for the bench to compare the CPU
each request costs with the hub's own gateway (gunicorn's threads, or nameko's eventlet). Not a production
entrypoint: it gives none of the gateway's JSON answers to malformed request lines and 64 kB paths.

    python -m bench.alt_gateway HOST PORT

It needs bjoern-binary (pyproject's `bench` extra), not a hub dependency."""
from __future__ import annotations

import os
import sys
from typing import Any


def make_app() -> Any:
    from connectors.redis_gate import RedisGate
    from connectors.redis_sold_out import RedisSoldOut
    from connectors.registry import build_connector
    from hub.api.app import build_api, build_deps
    from hub.bootstrap import build_context
    from hub.config import load_config
    from hub.logs import configure
    from hub.storage.db import warm_pool

    configure(level=os.environ.get("HUB_LOG_LEVEL", "WARNING"))
    cfg = load_config()
    ctx = build_context(cfg, upgrade=False, connectors=build_connector)
    if cfg.hub.redis_url:
        ctx.gate = RedisGate.from_url(cfg.hub.redis_url)
        ctx.sold_out = RedisSoldOut.from_url(cfg.hub.redis_url)
    warm_pool(ctx.engine)
    return build_api(ctx, build_deps(ctx))


def main() -> None:
    import bjoern

    host, port = sys.argv[1], int(sys.argv[2])
    app = make_app()
    print(f"hub: running gateway (bjoern) on {host}:{port}", flush=True)
    bjoern.run(app, host, port, reuse_port=True)


if __name__ == "__main__":
    main()


class AltGateway:
    """One such server as a child process, with HubProcess's interface (`proc`, `stop`) for the bench."""

    def __init__(self, kind: str, env: dict[str, str], log_path: Any, host: str, port: int):
        import subprocess
        import time
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.alt_gateway", host, str(port)], cwd=root,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"hub: running" not in Path(log_path).read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} gateway did not start: {Path(log_path).read_text()[-2000:]}")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """The server and its workers (gunicorn's serve in a child)."""
        from pathlib import Path

        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [self.proc.pid, *(int(x) for x in children.read_text().split())] if children.exists() \
            else [self.proc.pid]

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
