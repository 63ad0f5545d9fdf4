"""`hub run gateway` on granian: a Rust HTTP server (hyper) calling the hub's WSGI API from its blocking threads.

Why: on this project's 2-core machine gunicorn's Python HTTP layer costs about 0.45 ms of CPU per request
around an API call that itself costs 0.09 (a JSON 404); granian's costs about 0.1 (bench figures in the
README). The same API object serves (`workers/gateway_api.py`), built in the worker after the fork.

Shape: this process is granian's main (the one `hub up`'s supervisor watches): it binds the port (SO_REUSEPORT,
so replicas share it), forks one worker that serves, and exits when that worker does, so the supervisor sees a
crash. The worker dies with this process (PR_SET_PDEATHSIG): a kill -9 of the main leaves no orphan serving.
SIGTERM stops accepting and lets the requests in hand finish (GRACEFUL_STOP_S at most); the bench's SIGUSR2 is
ignored in both. What hyper refuses before the API sees a request (a malformed request line or header, a
request line over its buffer) is answered by granian itself: a 400 or 414 with no body, not the API's JSON."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from multiprocessing.util import Finalize
from typing import Any

from granian.constants import Interfaces, Loops
from granian.log import LogLevels
from granian.server import Server

from hub.metrics import process_exited

GRACEFUL_STOP_S = 10            # below the supervisor's 15 s between SIGTERM and SIGKILL
PR_SET_PDEATHSIG = 1

# The worker's API, built after the fork by `_load` (the main process never builds it: no pools to share).
_WORKER: dict[str, Any] = {}


def _die_with_parent() -> None:
    """The kernel sends this process SIGTERM when its parent (granian's main) dies, however it died."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() == 1:              # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _load(*_: Any) -> Any:
    _die_with_parent()
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    # Its live-only gauges stop counting when it stops (a multiprocessing child runs no atexit hooks).
    Finalize(None, process_exited, args=(os.getpid(),), exitpriority=0)
    wsgi = _WORKER["build"]()
    print(_WORKER["announce"], flush=True)        # the port is bound (by the main) and the API is ready
    return wsgi


def serve(build_wsgi: Any, host: str, port: int, threads: int, announce: str) -> int:
    """Serve the WSGI app `build_wsgi()` builds (in the worker) on host:port until SIGTERM (graceful) or SIGINT;
    print `announce` once it serves. Returns granian's exit code (non-zero when the worker died)."""
    _WORKER.update(build=build_wsgi, announce=announce)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    server = Server("hub-gateway", address=host, port=port, interface=Interfaces.WSGI, workers=1,
                    blocking_threads=threads, websockets=False, loop=Loops.asyncio,
                    log_level=LogLevels.warning, workers_kill_timeout=GRACEFUL_STOP_S,
                    respawn_failed_workers=False)
    try:
        server.serve(target_loader=_load, wrap_loader=False)
    finally:
        for worker in server.wrks:         # one killed outright never ran its own finalizer
            pid = getattr(worker.inner, "pid", None)      # a multiprocessing.Process on this (GIL) build
            if pid is not None:
                process_exited(pid)
    return 0
