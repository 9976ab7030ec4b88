"""What evaluation during training (--eval-freq) costs: one evaluation against the training step.

Measured in one process, at the paper's settings unless told otherwise: ResNet-9 generators,
64 filters, 256 px crops, batch 1; --eval-size 50 translations per direction of horse2zebra's
testA/testB against all 120/140 held-out images. Prints (and writes with --json):

* what the first evaluation does once per run (load Inception, read the held-out images, extract
  the real images' features),
* what every evaluation does (translations by G and F + Inception on 2 x eval-size images +
  KID/FID + failure checks),
* the median training step,
* the share of training time spent evaluating at --eval-freq N: eval / (N x step + eval).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/eval_overhead.py ../shared/data/horse2zebra --json out.json
    # on a GPU (not measured here; this machine has none):
    PYTHONPATH=src python benchmarks/eval_overhead.py ../shared/data/horse2zebra --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataroot", type=Path, help="dataset with testA/ and testB/ (horse2zebra)")
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--generator", default="resnet_9blocks")
    parser.add_argument("--eval-size", type=int, default=50)
    parser.add_argument("--eval-freq", type=int, nargs="+", default=[5000, 2000, 1000])
    parser.add_argument("--steps", type=int, default=2, help="timed training steps (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from cyclegan.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
    from cyclegan.training.distributed import ProcessGroup
    from cyclegan.training.evaluation import TrainingEvaluator
    from cyclegan.methods import train_step
    from step_setup import build_step

    setup = build_step(args.crop_size, 1, args.generator, args.device)
    times = []
    for i in range(args.steps + 1):
        start = time.perf_counter()
        losses = train_step(setup.nets, setup.optimizers, setup.pools, setup.real_a, setup.real_b, LossConfig())
        float(losses["disc_b"])
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    step = sorted(times)[len(times) // 2]

    cfg = TrainConfig(model=ModelConfig(generator=args.generator),
                      data=DataConfig(dataroot=str(args.dataroot), crop_size=args.crop_size, load_size=args.crop_size),
                      run=RunConfig(eval_freq=1, eval_size=args.eval_size, device=args.device))
    run_dir = Path("/tmp") / f"cyclegan-eval-overhead-{int(time.time())}"
    evaluator = TrainingEvaluator.for_run(cfg, run_dir, torch.device(args.device), ProcessGroup(), 0)
    nets = setup.nets
    # once per run: Inception loaded, held-out images read, the real images' features extracted
    start = time.perf_counter()
    evaluator._prepare()
    once = time.perf_counter() - start
    # every reading: translations (G and F) + Inception on the translations + KID/FID + checks + CSV
    start = time.perf_counter()
    evaluator.evaluate(1, nets)
    later = time.perf_counter() - start
    first = once + later

    result = {
        "cpu": cpu_model(), "device": args.device, "threads": torch.get_num_threads(), "generator": args.generator,
        "crop_size": args.crop_size, "eval_size": args.eval_size,
        "n_real": {d: len(f) for d, f in evaluator.files.items()},
        "sec_per_step_median": step, "once_per_run_sec": once, "first_eval_sec": first, "eval_sec": later,
        "share": {str(n): later / (n * step + later) for n in args.eval_freq},
    }
    print(f"{result['cpu']}, {args.device}, {result['threads']} threads; {args.generator} at {args.crop_size} px")
    print(f"training step (median of {args.steps}): {step:.2f} s")
    print(f"first evaluation (Inception load + real features): {first:.1f} s; later evaluations: {later:.1f} s "
          f"({args.eval_size} translations per direction)")
    for n, share in result["share"].items():
        print(f"--eval-freq {n}: {100 * share:.2f}% of training time")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
