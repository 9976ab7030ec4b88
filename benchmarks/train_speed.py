"""Seconds per training iteration and peak memory of the default (paper) configuration.

Two steps are timed in the same run: `train_step` (ours: two backward chains, paired passes
on GPUs, no host syncs) and `reference_step` (the same computation structured like the authors' cycle_gan_model.py:
one call per pass, every loss read back to the host each step), so each row carries a
ratio measured side by side. Each (crop, step) runs in its own subprocess so that the peak
resident memory it reports belongs to it alone. Data are random tensors: this measures the
step (6 generator passes, 4+4 discriminator passes, 2 Adam updates), not image decoding.
With --rounds N every (crop, step) subprocess runs N times, the steps alternating within each
round (in reversed order every other round), so a change in the machine's load reaches all of
them alike; the table gives the minimum and median over all timed iterations of all rounds,
and the ratios are of those. The header names the CPU model (lscpu) and the load average.

    python benchmarks/train_speed.py --crop-sizes 128 256 --steps 5
    OMP_NUM_THREADS=1 python benchmarks/train_speed.py --crop-sizes 128 --steps 3 --rounds 2 --amp
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date


def measure(crop: int, steps: int, warmup: int, generator: str, batch: int, device: str, path: str,
            amp: bool = False, compile: bool = False) -> dict:
    import torch

    from cyclegan.config import LossConfig
    from cyclegan.training.reference import reference_step
    from cyclegan.methods import train_step
    from step_setup import build_step

    step = train_step if path == "fast" else reference_step
    setup = build_step(crop, batch, generator, device, amp=amp, compile=compile)

    def one_step() -> dict:
        with setup.autocast():
            return step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, LossConfig())

    for _ in range(warmup):
        one_step()
    if setup.real_a.is_cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        losses = one_step()
        float(losses["disc_b"])  # wait for the step to finish (the reference has already synced)
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raw = list(times)
    times.sort()
    return {"times": raw,
        "path": path + ("+amp" if amp else "") + ("+compile" if compile else ""), "crop": crop, "batch": batch, "generator": generator, "device": device, "steps": steps,
        "sec_per_step_median": times[len(times) // 2], "sec_per_step_min": times[0],
        "images_per_sec": batch / times[len(times) // 2], "peak_rss_gb": peak_kb / 1024**2,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="run every step this many times, alternated")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--generator", default="resnet_9blocks")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process mode
    parser.add_argument("--path", choices=["fast", "reference"], default="fast", help=argparse.SUPPRESS)
    parser.add_argument("--amp", action="store_true", help="also time ours with bf16 autocast (CUDA, or a CPU with AVX512-BF16/AMX)")
    parser.add_argument("--compile", action="store_true", help="also time ours with torch.compile")
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.steps, args.warmup, args.generator, args.batch_size, args.device,
                                 args.path, amp="amp" in args.variant, compile="compile" in args.variant)))
        return
    load_before = os.getloadavg()
    results = []
    for crop in args.crop_sizes:
        runs = [("reference", ""), ("fast", "")]
        runs += [("fast", "amp")] if args.amp else []
        runs += [("fast", "compile")] if args.compile else []
        runs += [("fast", "amp+compile")] if args.amp and args.compile else []
        per_run: dict[tuple[str, str], list[dict]] = {r: [] for r in runs}
        for rnd in range(args.rounds):
            for path, variant in (runs if rnd % 2 == 0 else runs[::-1]):
                cmd = [sys.executable, __file__, "--one", str(crop), "--steps", str(args.steps), "--warmup",
                       str(args.warmup), "--batch-size", str(args.batch_size), "--generator", args.generator,
                       "--device", args.device, "--path", path, "--variant", variant]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                per_run[(path, variant)].append(json.loads(out.strip().splitlines()[-1]))
                done = per_run[(path, variant)][-1]
                print(f"round {rnd} crop {crop} {done['path']}: " + " ".join(f"{t:.3f}" for t in done["times"])
                      + f" s, load {os.getloadavg()[0]:.1f}", flush=True)
        for rows in per_run.values():
            times = [t for r in rows for t in r["times"]]
            merged = dict(rows[0], times=times, rounds=len(rows), sec_per_step_median=statistics.median(times),
                          sec_per_step_min=min(times), peak_rss_gb=max(r["peak_rss_gb"] for r in rows))
            merged["images_per_sec"] = merged["batch"] / merged["sec_per_step_median"]
            results.append(merged)
    load_after = os.getloadavg()
    cpu = cpu_model()
    print(f"# train_speed {date.today()} {cpu} ({args.device}), {results[0]['threads']} threads, "
          f"{args.rounds} rounds x {args.steps} steps; load average (1/5/15 min) before "
          + "/".join(f"{x:.1f}" for x in load_before) + ", after " + "/".join(f"{x:.1f}" for x in load_after))
    print("| crop | batch | generator | step | s/step (median) | s/step (min) | images/s | peak RSS (GB) | "
          "speed-up (median) | speed-up (min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    per_crop = len(results) // len(args.crop_sizes)
    for i in range(0, len(results), per_crop):
        ref = results[i]
        for r in results[i:i + per_crop]:
            ratio = ref["sec_per_step_median"] / r["sec_per_step_median"]
            ratio_min = ref["sec_per_step_min"] / r["sec_per_step_min"]
            print(f"| {r['crop']} | {r['batch']} | {r['generator']} | {r['path']} | {r['sec_per_step_median']:.3f} | "
                  f"{r['sec_per_step_min']:.3f} | {r['images_per_sec']:.2f} | {r['peak_rss_gb']:.2f} | {ratio:.2f}x | "
                  f"{ratio_min:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": str(date.today()), "cpu": cpu, "load_before": load_before, "load_after": load_after,
                       "results": results}, f, indent=2)


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

if __name__ == "__main__":
    main()
