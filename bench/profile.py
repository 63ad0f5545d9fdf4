"""`--profile DIR`: where each hub process spends its CPU while a figure is measured, and the top frames.

The hub processes run with `HUB_CPU_PROFILE=DIR/hub` (`workers/cpu_profile.py`: a sampler of the process's
own CPU time, not of the clock — on a loaded machine py-spy's wall-clock samples pile up wherever a process
sends and is preempted by the peer it woke). Before a part every process is told to start afresh (SIGUSR2),
after it to write what it sampled; the part's stacks per role are DIR/<part>-<role>.txt (collapsed:
`frame;frame;... count`, for flamegraph.pl or speedscope), and the top frames are printed: on their own (self)
and with what they call (inclusive, the hub's own code)."""
from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OWN = re.compile(r"\((hub|connectors|mappings|workers)/")


def summarise(path: Path, top: int = 12) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, the top frames by self samples, the hub's own frames by inclusive samples)."""
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        leaf[frames[-1]] += n
        for name in {f for f in frames if OWN.search(f)}:
            own[name] += n
    return total, leaf.most_common(top), own.most_common(top)


class Profiler:
    """Off without a directory; with one, `env()` is what the hub processes start with."""

    def __init__(self, out_dir: Path | None):
        self.out_dir = out_dir
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            for old in out_dir.glob("hub.*.txt"):
                old.unlink()

    def env(self) -> dict[str, str]:
        return {"HUB_CPU_PROFILE": str(self.out_dir.resolve() / "hub")} if self.out_dir else {}

    def _dump_all(self, pids: list[int]) -> dict[int, Path]:
        """Each process writes its samples since the last dump; the files it wrote, by pid."""
        assert self.out_dir is not None
        seen = {pid: set(self.out_dir.glob(f"hub.{pid}.*.txt")) for pid in pids}
        for pid in pids:
            os.kill(pid, signal.SIGUSR2)
        out: dict[int, Path] = {}
        deadline = time.monotonic() + 10
        while len(out) < len(pids) and time.monotonic() < deadline:
            for pid in pids:
                new = set(self.out_dir.glob(f"hub.{pid}.*.txt")) - seen[pid]
                if new:
                    out[pid] = max(new, key=lambda p: int(p.name.split(".")[2]))
            time.sleep(0.05)
        time.sleep(0.1)                                  # the last file's writing done
        return out

    @contextmanager
    def part(self, name: str, roles: dict[str, list[int]]) -> Iterator[None]:
        if self.out_dir is None:
            yield
            return
        pids = [pid for group in roles.values() for pid in group]
        self._dump_all(pids)                             # start afresh: what came before is not this part's
        try:
            yield
        finally:
            files = self._dump_all(pids)
            for role, group in roles.items():
                merged = self.out_dir / f"{name}-{role}.txt"
                merged.write_text("".join(files[pid].read_text() for pid in group if pid in files))
                total, leaf, own = summarise(merged)
                print(f"\n  CPU profile {name} / {role}: {total} samples ({merged})")
                print("    self:      " + "\n               ".join(f"{n * 100 / max(total, 1):5.1f}%  {f}"
                                                                  for f, n in leaf))
                print("    inclusive: " + "\n               ".join(f"{n * 100 / max(total, 1):5.1f}%  {f}"
                                                                  for f, n in own))
