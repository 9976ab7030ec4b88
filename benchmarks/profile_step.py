"""Where one training step's time goes: the torch profiler's operator table and the FLOP count.

The default (paper) configuration on random tensors, one warm-up step, then one profiled step
and one step under FlopCounterMode. Prints the operators by self time, the step's total FLOPs
and the achieved rate; with --json, writes the top operators too.

    python benchmarks/profile_step.py --crop 256
    python benchmarks/profile_step.py --crop 256 --amp          # bfloat16 autocast
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from cyclegan.config import LossConfig
from cyclegan.methods import train_step
from step_setup import build_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--generator", default="resnet_9blocks")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--top", type=int, default=15, help="operators to list")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    setup = build_step(args.crop, args.batch_size, args.generator, args.device, amp=args.amp)
    dev = setup.real_a.device

    def step() -> None:
        with setup.autocast():
            losses = train_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, LossConfig())
        float(losses["disc_b"])  # waits for the device

    step()  # warm-up: allocator, oneDNN primitive caches, cuDNN autotuning
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start

    sort_key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort_key, row_limit=args.top))
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_us = sum(e.self_cpu_time_total for e in rows)
    flops = counter.get_total_flops()
    print(f"step (unprofiled): {seconds:.3f} s; {flops / 1e12:.3f} TFLOP per step; "
          f"{flops / seconds / 1e9:.0f} GFLOP/s achieved")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "date": str(date.today()), "crop": args.crop, "batch": args.batch_size, "amp": args.amp,
                "device": args.device, "threads": torch.get_num_threads(), "seconds": seconds, "flops": flops,
                "top_ops": [{"name": e.key, "calls": e.count, "self_share": e.self_cpu_time_total / total_us}
                            for e in rows[:args.top]],
            }, f, indent=1)


if __name__ == "__main__":
    main()
