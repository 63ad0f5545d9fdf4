"""`HUB_CPU_PROFILE=PREFIX`: this process samples its own stack every few milliseconds of CPU time it uses.

A timer of the process's CPU time (ITIMER_PROF), not of the clock: on a loaded machine a wall-clock sampler
(py-spy, pyinstrument) also counts the time a process waits for a core, and that time piles up where it
sends (the peer it wakes takes the core), so it shows sockets and `do_execute` as hot when they are not.
The handler runs on the greenthread that was running, so eventlet's greenthreads are told apart.

SIGUSR2 writes what was sampled since the last SIGUSR2 to `PREFIX.<pid>.<n>.txt` (collapsed stacks,
`frame;frame;... count`, which flamegraph.pl and speedscope read) and starts afresh: the bench sends one
before and one after each figure. Off (nothing installed) without the variable."""
from __future__ import annotations

import os
import signal
from collections import Counter
from types import FrameType

INTERVAL_S = 0.002                 # of CPU time: some 500 samples per busy second


class CpuSampler:
    def __init__(self, prefix: str, interval_s: float = INTERVAL_S):
        self.prefix, self.interval_s = prefix, interval_s
        self.stacks: Counter[str] = Counter()
        self.dumps = 0

    def install(self) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        signal.signal(signal.SIGUSR2, self._dump)
        signal.setitimer(signal.ITIMER_PROF, self.interval_s, self.interval_s)

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_qualname} ({_short(code.co_filename)})")
            frame = frame.f_back
        self.stacks[";".join(reversed(names))] += 1

    def _dump(self, signum: int, frame: FrameType | None) -> None:
        stacks, self.stacks = self.stacks, Counter()
        path = f"{self.prefix}.{os.getpid()}.{self.dumps}.txt"
        self.dumps += 1
        with open(path, "w") as f:
            f.writelines(f"{stack} {n}\n" for stack, n in stacks.items())


def _short(path: str) -> str:
    """site-packages/sqlalchemy/orm/session.py -> sqlalchemy/orm/session.py; the hub's own relative to it."""
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[-1] if marker == "/lib/python3" else path.split(marker, 1)[1]
    for top in ("/hub/", "/connectors/", "/mappings/", "/workers/", "/sandbox/"):
        if top in path:
            return top[1:] + path.rsplit(top, 1)[1]
    return path


def install_from_env() -> None:
    prefix = os.environ.get("HUB_CPU_PROFILE")
    if prefix:
        CpuSampler(prefix).install()
