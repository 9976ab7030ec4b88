"""The training step on a CUDA GPU: every precision, memory format and pass layout, side by side.

One process, random tensors, the paper's configuration (ResNet-9, ngf/ndf 64, instance norm,
pools of 50). Each row builds the step afresh, runs --warmup iterations (which hold any
torch.compile work), then --blocks blocks of --steps iterations each timed with CUDA events
around the block (no host sync inside a block, as in training); the row reports the median
block. The authors'-structure reference step (one call per pass, every loss read back to the
host) runs in the same process, so each row carries a ratio against it measured side by side.

Columns: iterations/s, images/s, peak allocated GPU memory, achieved TFLOP/s (the step's
floating-point work counted once with FlopCounterMode, times the batch), and the hours the
paper's horse2zebra schedule (200 epochs x 1,334 images = 266,800 images) would take.

    python benchmarks/gpu_speed.py --crop 256 --batches 1 4 --json gpu_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_setup import build_step  # noqa: E402

from cyclegan.config import LossConfig  # noqa: E402
from cyclegan.methods.cyclegan import train_step  # noqa: E402
from cyclegan.training.reference import reference_step  # noqa: E402

PAPER_IMAGES = 200 * 1334  # horse2zebra: 200 epochs of the 1,334 trainA images, batch 1


# (label, reference?, amp, channels_last, fused, compile)
VARIANTS = [
    ("reference (authors' structure), fp32", True, False, False, None, False),
    ("ours fp32, fused passes", False, False, False, True, False),
    ("ours fp32, unfused", False, False, False, False, False),
    ("ours fp32, channels_last", False, False, True, True, False),
    ("ours --amp (bf16, channels_last, fused)", False, True, True, True, False),
    ("ours --amp, no channels_last", False, True, False, True, False),
    ("ours --amp, unfused", False, True, True, False, False),
    ("ours --amp --compile", False, True, True, True, True),
    ("ours fp32 --compile", False, False, False, True, True),
]


def step_flops(crop: int) -> float:
    """Floating-point operations of one batch-1 step (forward and backward), counted on the GPU."""
    from torch.utils.flop_counter import FlopCounterMode

    setup = build_step(crop, 1, "resnet_9blocks", "cuda")
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, LossConfig(), fuse=False)
    return float(counter.get_total_flops())


def measure(crop: int, batch: int, variant: tuple, warmup: int, steps: int, blocks: int, flops: float) -> dict:
    label, reference, amp, channels_last, fused, compile = variant
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    setup = build_step(crop, batch, "resnet_9blocks", "cuda", amp=amp, compile=compile, channels_last=channels_last)
    cfg = LossConfig()

    def one() -> None:
        with setup.autocast():
            if reference:
                reference_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, cfg)
            else:
                train_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, cfg, fuse=fused)

    started = time.perf_counter()
    for _ in range(warmup):
        one()
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - started
    per_step = []
    for _ in range(blocks):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(steps):
            one()
        end.record()
        end.synchronize()
        per_step.append(begin.elapsed_time(end) / 1000 / steps)
    sec = statistics.median(per_step)
    return {"label": label, "crop": crop, "batch": batch, "amp": amp, "channels_last": channels_last,
            "fused": fused, "compile": compile, "reference": reference,
            "sec_per_step": sec, "blocks_sec_per_step": per_step, "it_per_s": 1 / sec, "images_per_s": batch / sec,
            "peak_gb": torch.cuda.max_memory_allocated() / 1024**3, "tflops": flops * batch / sec / 1e12,
            "paper_hours": PAPER_IMAGES / (batch / sec) / 3600, "warmup_s": warmup_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="iterations per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per row (the median is reported)")
    parser.add_argument("--compile-batches", type=int, nargs="*", default=None,
                        help="time the --compile rows at these batch sizes only (default: all; compiling takes minutes)")
    parser.add_argument("--json", default=None, help="also write the results here (rewritten after every row)")
    args = parser.parse_args()
    name = torch.cuda.get_device_name()
    flops = step_flops(args.crop)
    print(f"# gpu_speed {date.today()} {name}, torch {torch.__version__}, cudnn {torch.backends.cudnn.version()}, "
          f"step {flops / 1e12:.3f} TFLOP at {args.crop} px batch 1; TF32 for convolutions "
          f"{torch.backends.cudnn.allow_tf32}, for matmul {torch.backends.cuda.matmul.allow_tf32}", flush=True)
    results = []
    for batch in args.batches:
        for variant in VARIANTS:
            if variant[5] and args.compile_batches is not None and batch not in args.compile_batches:
                continue
            try:
                row = measure(args.crop, batch, variant, args.warmup, args.steps, args.blocks, flops)
            except Exception as err:  # noqa: BLE001 - a variant that breaks is a finding, the others still run
                row = {"label": variant[0], "crop": args.crop, "batch": batch, "error": f"{type(err).__name__}: {err}"}
                print(f"FAILED batch {batch} {variant[0]}: {row['error'][:500]}", flush=True)
            results.append(row)
            if "error" not in row:
                print(f"batch {batch} {row['label']}: {row['it_per_s']:.1f} it/s, {row['peak_gb']:.2f} GB, "
                      f"warm-up {row['warmup_s']:.1f} s", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"date": str(date.today()), "device": name,
                                                       "torch": torch.__version__, "step_tflop": flops / 1e12,
                                                       "results": results}, indent=2))
    print("| batch | step | it/s | images/s | peak GPU memory (GB) | TFLOP/s | paper schedule (h) | vs reference |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batches:
        rows = [r for r in results if r["batch"] == batch and "error" not in r]
        ref = next((r for r in rows if r["reference"]), None)
        for r in rows:
            ratio = f"{ref['sec_per_step'] / r['sec_per_step']:.2f}x" if ref else "-"
            print(f"| {batch} | {r['label']} | {r['it_per_s']:.1f} | {r['images_per_s']:.1f} | {r['peak_gb']:.2f} | "
                  f"{r['tflops']:.1f} | {r['paper_hours']:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
