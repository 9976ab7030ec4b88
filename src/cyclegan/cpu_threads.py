"""CPU threads: how torch's OpenMP threads wait, how many there are, and fewer under load.

torch's CPU build runs its parallel regions (oneDNN convolutions, MKL, element-wise ops)
on OpenMP: GNU libgomp in the PyPI wheels. A thread that reaches the end of a parallel
region first spins (300,000 times in libgomp), waiting for the others, and a training step
passes thousands of such barriers. On a machine where another process is busy, one of the
team is often descheduled: its partners spin on their cores instead of giving them up, and
every barrier waits for the scheduler to run the late thread again. Measured on a 2-core AMD
EPYC beside one busy process (docs/benchmarks.md, "A busy machine"): 0.23 s per step idle,
about 20 s beside it.

Two things together keep that from happening, measured there side by side:

- Fewer threads while other processes hold the CPUs (`LoadAwareThreads`): every couple of
  seconds, between training steps (between images in `translate`), the kernel's per-CPU
  counters (/proc/stat) say how much of our CPUs other processes used, less this process
  and its data-loading workers; one thread fewer for each CPU they hold, back up when they
  leave. A team whose threads all have a core never waits long at a barrier.
- A shorter spin, so that the steps before the next reading are not a disaster: the package
  sets GOMP_SPINCOUNT=3000 before torch loads. The first step beside a new busy process
  then takes 0.8 s instead of 14-22 s, while the idle machine keeps torch's speed (the
  spin still outlasts a barrier's usual wait): 0.223 against 0.225 s per step, where 1,000
  spins cost 1.08x and never spinning (OMP_WAIT_POLICY=PASSIVE) 1.5-1.9x, since every
  barrier then wakes a sleeping thread.

Unless the user chose a wait (OMP_WAIT_POLICY, GOMP_SPINCOUNT or KMP_BLOCKTIME is set: then
nothing changes). OpenMP reads its environment once, when the library is loaded, so the
spin only takes effect when `cyclegan` is imported before `torch` (the `cyclegan` command
always does); a program that imports torch first keeps torch's default, and can set
GOMP_SPINCOUNT=3000 itself. Intel's libiomp does not read it. Nothing here imports torch
at module level.

The number of threads is a run setting (`--threads`), applied with torch.set_num_threads
when a command starts. The default, 0, keeps torch's count but at most the CPUs this
process may run on: its affinity mask (torch's OpenMP already starts from it), capped by a
cgroup CPU quota, as in a container started with `--cpus 2` on a large host, where torch
would otherwise start one thread per host core; and it follows the load as above. An
explicit --threads N or OMP_NUM_THREADS fixes the count.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import NamedTuple

# Any of these means the user (or a launcher) chose how OpenMP threads wait: leave it alone.
WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# Spins before a waiting OpenMP thread sleeps (libgomp's own default: 300,000).
SPIN_COUNT = 3000
# Either of these fixes the thread count torch starts with.
COUNT_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_wait_policy_default(environ: MutableMapping[str, str] = os.environ) -> bool:
    """GOMP_SPINCOUNT=3000 unless a wait setting is already given or torch already loaded.

    Returns whether it was set. After torch has loaded, OpenMP has read its environment, so
    setting the variable then would only make it lie about the policy in force.
    """
    if "torch" in sys.modules or any(k in environ for k in WAIT_SETTINGS):
        return False
    environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return True


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs allowed by a cgroup v2 quota (`cpu.max`, e.g. "200000 100000" = 2), None without one."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus() -> int:
    """CPUs this process may actually run on (not the machine's count)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return min(n, limit) if limit else n


def use_threads(threads: int = 0, environ: MutableMapping[str, str] = os.environ) -> int:
    """Set torch's intra-op thread count for this process; return the count in force.

    threads > 0: exactly that many. 0: torch's current count, capped at `available_cpus()`
    (so a lower count set by the caller, e.g. torch.set_num_threads(1), stays), or left as it
    is when OMP_NUM_THREADS / MKL_NUM_THREADS is given (torch already read it).
    """
    import torch

    if threads < 0:
        from .config import ConfigError

        raise ConfigError(f"--threads must be 0 (the available CPUs) or a positive count, got {threads}")
    if threads > 0:
        torch.set_num_threads(threads)
    elif not any(k in environ for k in COUNT_SETTINGS) and torch.get_num_threads() > available_cpus():
        torch.set_num_threads(available_cpus())
    return torch.get_num_threads()


# Seconds between two readings of the load: long enough for /proc's 1/100 s ticks to average
# over, short enough that a stall beside a new busy process lasts about one reading.
LOAD_INTERVAL = 2.0


def threads_for_load(current: int, most: int, cpus: int, others: float) -> int:
    """The thread count for a team of `current` (at most `most`) when other processes keep
    `others` of our `cpus` CPUs busy.

    One thread fewer for each CPU they hold, rounding so that more than half a CPU counts (a
    thread that shares its core with them is descheduled often, and each time the whole team
    waits at the next barrier). More again only when they leave another quarter of a CPU, so a
    load near the boundary does not flip the count at every reading.
    """
    free = cpus - others
    fewer = max(1, min(most, math.ceil(free - 0.5)))
    if fewer < current:
        return fewer
    more = max(1, min(most, math.floor(free + 0.25)))
    return max(current, more)


def cpu_ticks(cpus: Iterable[int], stat: Path = Path("/proc/stat")) -> tuple[int, int]:
    """(busy, total) clock ticks of these CPUs since boot, from the kernel's per-CPU counters.

    Busy includes steal: time the hypervisor gave our virtual CPU to someone else is a core
    taken as surely as by a local process.
    """
    wanted = {f"cpu{c}" for c in cpus}
    busy = total = 0
    for line in stat.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] in wanted:
            # user nice system idle iowait irq softirq steal (guest time is already in user)
            user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
            busy += user + nice + system + irq + softirq + steal
            total += user + nice + system + idle + iowait + irq + softirq + steal
    return busy, total


def process_ticks(pid: int | str = "self") -> int:
    """User + system clock ticks a process (all its threads) has used."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": the name may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime


class _Reading(NamedTuple):
    at: float  # time.monotonic()
    busy: int  # clock ticks of our CPUs, anyone's
    total: int
    ours: dict[int, int]  # clock ticks by pid: this process and its live children


class LoadAwareThreads:
    """Runs fewer torch threads while other processes hold this process's CPUs.

    Call `update()` between steps; it reads the load at most every `interval` seconds and
    returns a line saying so when it changes the count. Ours: this process and its live
    children (the data loader's workers); everything else busy on our CPUs is the others'.
    """

    def __init__(self, most: int, cpus: Iterable[int], interval: float = LOAD_INTERVAL):
        self.most = most
        self.cpus = sorted(cpus)
        self.interval = interval
        self.threads = most
        self._last = self._reading()

    @classmethod
    def for_run(cls, threads: int, distributed: bool,
                environ: MutableMapping[str, str] = os.environ) -> LoadAwareThreads | None:
        """One following the load for a run with `--threads threads`, or None where the count is fixed:
        an explicit --threads or OMP_NUM_THREADS, torchrun (each process is given its share), a
        single thread, or no /proc to read."""
        import torch

        most = torch.get_num_threads()
        if threads != 0 or distributed or most < 2 or any(k in environ for k in COUNT_SETTINGS):
            return None
        try:
            return cls(most, os.sched_getaffinity(0))
        except (AttributeError, OSError, ValueError):  # not Linux (no affinity, no /proc), or a /proc/stat we cannot parse
            return None

    def _reading(self) -> _Reading:
        busy, total = cpu_ticks(self.cpus)
        ours = {os.getpid(): process_ticks()}
        for child in multiprocessing.active_children():
            try:
                ours[child.pid] = process_ticks(child.pid)
            except (OSError, ValueError, IndexError):  # ended since it was listed
                pass
        return _Reading(time.monotonic(), busy, total, ours)

    def others(self) -> float | None:
        """CPUs other processes kept busy since the last reading (None: too soon to tell)."""
        if time.monotonic() - self._last.at < self.interval:
            return None
        before, now = self._last, self._reading()
        self._last = now
        ticks_per_cpu = (now.total - before.total) / len(self.cpus)
        if ticks_per_cpu <= 0:  # no per-CPU lines for our CPUs (or no tick yet): nothing to tell
            return None
        # A child that started since the last reading used all its ticks since then; one that
        # ended took its last ones with it (counted as the others', for one reading).
        ours = sum(t - before.ours.get(pid, 0) for pid, t in now.ours.items())
        return max(0.0, (now.busy - before.busy - ours) / ticks_per_cpu)

    def update(self) -> str | None:
        others = self.others()
        if others is None:
            return None
        threads = threads_for_load(self.threads, self.most, len(self.cpus), others)
        if threads == self.threads:
            return None
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        if threads < self.most:
            return (f"other processes are using {others:.1f} of this process's {len(self.cpus)} CPUs: "
                    f"{threads} thread{'s' if threads > 1 else ''} for now (--threads {self.most} keeps {self.most})")
        return f"the CPUs are free again: {threads} threads"
