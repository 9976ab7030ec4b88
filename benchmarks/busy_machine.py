"""Training step time on an idle CPU and beside a busy process, old and new thread defaults.

`old` is torch's default alone: torch imported first, so OpenMP keeps its default wait
(threads spin 300,000 times at the end of every parallel region), and torch's thread count,
fixed. `new` is the package's default now (`cyclegan.cpu_threads`): cyclegan imported first,
so GOMP_SPINCOUNT=3000 is in force when torch loads, threads from the CPUs this process may
run on, and the count following the load between steps (`LoadAwareThreads`, as the training
loop does). `passive` is `new` with OMP_WAIT_POLICY=PASSIVE (never spin), `spin=N` is `new`
with GOMP_SPINCOUNT=N; a `+fixed` suffix (`spin=1000+fixed`, the default for a while) keeps
the thread count fixed instead of following the load. Each measurement is a fresh subprocess timing the training step (`train_step`,
random tensors, the demo's networks by default) for --steps steps or --max-seconds seconds,
whichever ends first (at least 2 steps). `busy` starts --busy more processes that spin in pure Python (bounded in time, and
stopped as soon as the measurement ends), unpinned or pinned to one CPU with --pin-busy. They
run in a session of their own, as another user's job or another terminal's would: Linux
(with autogroups, the default on desktop and most server kernels) first shares the CPUs
between sessions, then between the threads inside each. With --busy-same-session they share
ours, and a process then gets more of the CPUs the more threads it runs.
Conditions and variants alternate within every round, so slow drift of the machine's load
reaches all of them alike; the 1-minute load average is recorded before each measurement.
OMP_* / MKL_* / GOMP_* / KMP_* settings of the calling shell are removed for the children:
this measures the defaults.

    python benchmarks/busy_machine.py --rounds 2 --steps 10 --max-seconds 10 --warmup 0 --json busy.json
    python benchmarks/busy_machine.py --variants old new passive --rounds 3 --steps 20 --max-seconds 15
    python benchmarks/busy_machine.py --variants old new spin=1000+fixed --busy 3 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Busy for `duty` of every 0.1 s (1: all the time), until `seconds` have passed.
SPIN = ("import time\nend = time.monotonic() + {seconds}\nx = 0\nwhile time.monotonic() < end:\n"
        "    rest = time.monotonic() + {duty} * 0.1\n    while time.monotonic() < rest:\n        x += 1\n"
        "    if {duty} < 1:\n        time.sleep((1 - {duty}) * 0.1)\n")
STRIPPED = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS")


def child(args: argparse.Namespace) -> None:
    if args.variant == "old":
        import torch  # first: OpenMP reads its (default) wait policy before cyclegan could set one
    from cyclegan.config import LossConfig
    from cyclegan.cpu_threads import LoadAwareThreads, use_threads
    from cyclegan.methods import train_step

    import torch

    follow = None
    if args.variant != "old":
        use_threads(0)  # what `cyclegan train` does with the default --threads 0
        if not args.variant.endswith("+fixed"):
            follow = LoadAwareThreads.for_run(0, distributed=False)
    sys.path.insert(0, str(Path(__file__).parent))
    from step_setup import build_step

    setup = build_step(args.crop, 1, args.generator, "cpu", ngf=args.ngf, ndf=args.ndf)

    def one_step() -> None:
        losses = train_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, LossConfig())
        float(losses["disc_b"])

    for _ in range(args.warmup):
        one_step()
    times: list[float] = []
    threads: list[int] = []  # in force during each timed step
    begin = time.perf_counter()
    while len(times) < args.steps and (len(times) < 2 or time.perf_counter() - begin < args.max_seconds):
        start = time.perf_counter()
        threads.append(torch.get_num_threads())
        one_step()
        if follow is not None:
            follow.update()  # between steps, as the training loop does (inside the timing: its cost counts)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "threads": threads,
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)")}))


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def autogroups() -> str:
    try:
        return "on" if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1" else "off"
    except OSError:
        return "unknown"


def threads_used(*rows: dict) -> str:
    """"2", or "2->1 (17 of 20 steps on 1)" when the count followed the load."""
    counts = [n for r in rows for n in r["threads"]]
    if len(set(counts)) == 1:
        return str(counts[0])
    low = min(counts)
    return f"{counts[0]}->{low} ({counts.count(low)} of {len(counts)} steps on {low})"


def measure(args: argparse.Namespace, variant: str, busy: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED}
    base = variant.removesuffix("+fixed")
    if base.startswith("spin="):  # libgomp spins this many times, then sleeps (what the package then leaves alone)
        env["GOMP_SPINCOUNT"] = base.split("=", 1)[1]
    if base == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, __file__, "--one", variant, "--crop", str(args.crop), "--generator", args.generator,
           "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--max-seconds", str(args.max_seconds)]
    load_before = os.getloadavg()[0]
    spinners = []
    if busy:
        # Bounded on its own too: if this script is killed, the spinner still ends.
        code = SPIN.format(seconds=args.max_seconds * 10 + 600, duty=args.busy_duty)
        if args.pin_busy is not None:
            code = f"import os\nos.sched_setaffinity(0, {{{args.pin_busy}}})\n" + code
        spinners = [subprocess.Popen([sys.executable, "-c", code], start_new_session=not args.busy_same_session)
                    for _ in range(args.busy)]
    try:
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True,
                             timeout=args.max_seconds * 10 + 600).stdout
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    r = json.loads(out.strip().splitlines()[-1])
    t = r.pop("times")
    return {"variant": variant, "busy": busy, "busy_processes": args.busy if busy else 0,
            "load_1min_before": load_before, "steps": len(t),
            "min": min(t), "median": statistics.median(t), "times": t, **r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement, at most")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="stop timing after this (at least 2 steps)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--generator", default="resnet_6blocks")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--conditions", nargs="+", choices=["idle", "busy"], default=["idle", "busy"],
                        help="idle alone gives more rounds of the idle comparison in the same time")
    parser.add_argument("--busy", type=int, default=1, help="spinning processes in the busy condition")
    parser.add_argument("--pin-busy", type=int, default=None, help="pin the busy processes to this CPU")
    parser.add_argument("--busy-duty", type=float, default=1.0,
                        help="fraction of the time each busy process computes (it sleeps the rest of every 0.1 s)")
    parser.add_argument("--busy-same-session", action="store_true",
                        help="start the busy processes in this session (one autogroup with the measured step)")
    parser.add_argument("--variants", nargs="+", default=["old", "new"],
                        help="old, new, passive (OMP_WAIT_POLICY=PASSIVE) and spin=N (GOMP_SPINCOUNT=N); "
                             "+fixed: without following the load")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.variant = args.one
        child(args)
        return
    conditions = [c == "busy" for c in args.conditions]
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for rnd in range(args.rounds):
        for busy in conditions:
            # Swap the order every round so neither variant always runs first.
            for variant in (args.variants if rnd % 2 == 0 else args.variants[::-1]):
                r = measure(args, variant, busy)
                r["round"] = rnd
                rows.append(r)
                print(f"round {rnd} {'busy' if busy else 'idle'} {variant}: {r['steps']} steps, "
                      f"min {r['min']:.3f} s, median {r['median']:.3f} s, threads {threads_used(r)}, "
                      f"load {r['load_1min_before']:.2f}", flush=True)
    print(f"# busy_machine {started}, {cpu_model()}, {os.cpu_count()} CPUs, crop {args.crop}, "
          f"{args.generator} ngf {args.ngf} ndf {args.ndf}, busy processes {args.busy} (duty {args.busy_duty}), "
          f"pinned: {args.pin_busy}, "
          f"{'same' if args.busy_same_session else 'own'} session, autogroups: {autogroups()}")
    print("| condition | defaults | threads | steps | s/step min | s/step median | load avg (1 min) before |")
    print("|---|---|---|---|---|---|---|")
    for busy in conditions:
        for variant in args.variants:
            rs = [r for r in rows if r["busy"] == busy and r["variant"] == variant]
            t = [x for r in rs for x in r["times"]]
            loads = [r["load_1min_before"] for r in rs]
            print(f"| {'busy' if busy else 'idle'} | {variant} | {threads_used(*rs)} | {len(t)} | {min(t):.3f} | "
                  f"{statistics.median(t):.3f} | {min(loads):.2f}-{max(loads):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"started": started, "cpu": cpu_model(), "autogroups": autogroups(),
                                         "args": vars(args), "rows": rows}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
