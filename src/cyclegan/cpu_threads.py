"""CPU threads: how torch's OpenMP threads wait, and how many there are.

torch's CPU build runs its parallel regions (oneDNN convolutions, MKL, element-wise ops)
on OpenMP: GNU libgomp in the PyPI wheels, Intel's libiomp in some other builds. By default
a thread that reaches the end of a parallel region first spins, waiting for the others, and
a training step passes thousands of such barriers. On a machine where another process is
busy, one of the team is often descheduled: the others spin on their cores instead of
giving them up, and every barrier waits for the scheduler to run the late thread again.
Measured on a 2-core AMD EPYC beside one busy process (docs/benchmarks.md, "A busy
machine"), that is what turned a training step of well under a second into several.

So, unless the user chose otherwise, the package sets GOMP_SPINCOUNT=1000 before torch loads:
GNU libgomp (the OpenMP of torch's PyPI CPU wheels) then spins 1,000 times instead of
300,000 before a waiting thread sleeps and leaves its core to whoever can use it (1,000 is
also what libgomp itself uses when it has more threads than CPUs). Measured on the 2-core
EPYC (docs/benchmarks.md, "A busy machine"): beside busy processes that is 1.6-2.7x faster
than the old default and close to never spinning (OMP_WAIT_POLICY=PASSIVE), while on an idle
machine it stays near the old speed (1.05-1.26x), where PASSIVE cost 1.5-1.9x (every barrier then waits
for a sleeping thread to be woken). Other OpenMP runtimes (Intel's libiomp) do not read it
and keep their own defaults. OpenMP reads its environment once, when the library is loaded,
so this only takes effect when `cyclegan` is imported before `torch` (the `cyclegan` command
always does); a program that imports torch first keeps torch's default, and can set
GOMP_SPINCOUNT=1000 itself. Nothing here imports torch at module level.

The number of threads is a run setting (`--threads`), applied with torch.set_num_threads
when a command starts. The default, 0, keeps torch's count but at most the CPUs this
process may run on: its affinity mask (torch's OpenMP already starts from it), capped by a
cgroup CPU quota, as in a container started with `--cpus 2` on a large host, where torch
would otherwise start one thread per host core. An explicit OMP_NUM_THREADS is respected.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

# Any of these means the user (or a launcher) chose how OpenMP threads wait: leave it alone.
WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# Spins before a waiting OpenMP thread sleeps (libgomp's own default: 300,000).
SPIN_COUNT = 1000
# Either of these fixes the thread count torch starts with.
COUNT_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_wait_policy_default(environ: MutableMapping[str, str] = os.environ) -> bool:
    """GOMP_SPINCOUNT=1000 unless a wait setting is already given or torch already loaded.

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
