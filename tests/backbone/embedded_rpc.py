"""Run a service on the in-memory transport and call it over nameko RPC (a subprocess of the tests)."""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from nameko.rpc import rpc  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from workers.embedded import nameko_config  # noqa: E402


class Echo:
    name = "echo"

    @rpc
    def echo(self, value):
        return value


def main() -> None:
    config = nameko_config("memory://")
    runner = ServiceRunner(config)
    runner.add_service(Echo)
    runner.start()
    timings = []
    with ClusterRpcProxy(config, timeout=5) as proxy:
        for i in range(20):
            t = time.perf_counter()
            assert proxy.echo.echo({"n": i}) == {"n": i}
            timings.append(time.perf_counter() - t)
    runner.stop()
    print(json.dumps({"calls": len(timings), "median_s": sorted(timings)[len(timings) // 2]}))
    sys.exit(0)


if __name__ == "__main__":
    main()
