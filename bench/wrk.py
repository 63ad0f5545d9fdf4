"""Drive the gateway with wrk (a C load generator, so the client does not eat the hub's CPU) and read
the one JSON line its Lua scripts print at the end."""
from __future__ import annotations

import json
import shutil
import signal
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
    max_lag_ms: float = 0.0         # a paced script's largest lateness (paced_load.lua)

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(base: str, script: str, args: list[str], *, seconds: float = 10, connections: int = 8,
        threads: int = 2, timeout: str = "10s") -> WrkResult:
    return _result(_run_until_done(_command(base, script, args, seconds, connections, threads, timeout), threads))


class Background:
    """wrk running a script until `stop()`: the sync figure's background load (paced_load.lua), in C so it
    does not take the cores the hub's processes are measured on (the Python load took ~1 ms CPU a request)."""

    def __init__(self, base: str, script: str, args: list[str], *, connections: int = 32, threads: int = 2):
        cmd = _command(base, script, args, 3600, connections, threads, "30s")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> WrkResult:
        self._proc.send_signal(signal.SIGINT)       # wrk then prints its summary and calls the script's done()
        out, err = self._proc.communicate(timeout=60)
        if self._proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({self._proc.returncode}): {err}")
        return _result(out)


def _command(base: str, script: str, args: list[str], seconds: float, connections: int, threads: int,
             timeout: str) -> list[str]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs the Debian package)")
    return ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", timeout,
            "-s", str(LUA / script), base, "--", *args]


def _result(out: str) -> WrkResult:
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    d = json.loads(line[6:])
    return WrkResult(d["requests"], d["duration_us"] / 1e6, d["errors"], d["p50_us"] / 1000, d["p95_us"] / 1000,
                     d["p99_us"] / 1000, d["statuses"], d.get("max_lag_ms", 0))


def _run_until_done(cmd: list[str], threads: int) -> str:
    """wrk's output. wrk sleeps for the whole -d duration even when every thread stopped early (a
    script with a request budget, like the rush): each such thread prints a line when it is done, and
    once all have, wrk is interrupted so it reports the real elapsed time, not the -d it was given."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, done = [], 0
    assert proc.stdout is not None
    for raw in proc.stdout:
        lines.append(raw)
        if raw.startswith("BENCH-THREAD-DONE"):
            done += 1
            if done == threads:
                proc.send_signal(signal.SIGINT)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err}")
    return "".join(lines)
