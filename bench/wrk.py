"""Drive the gateway with wrk (a C load generator, so the client does not eat the hub's CPU) and read
the one JSON line its Lua scripts print at the end."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statuses: dict[str, int]

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(base: str, script: str, args: list[str], *, seconds: float = 10, connections: int = 8,
        threads: int = 2, timeout: str = "10s") -> WrkResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs the Debian package)")
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", timeout,
           "-s", str(LUA / script), base, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    d = json.loads(line[6:])
    return WrkResult(d["requests"], d["duration_us"] / 1e6, d["errors"], d["p50_us"] / 1000, d["p95_us"] / 1000,
                     d["p99_us"] / 1000, d["statuses"])
