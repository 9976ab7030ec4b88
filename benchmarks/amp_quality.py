"""Does --amp train the same model? Two runs, identical but for bfloat16 autocast, side by side.

Same data, seed, networks (the paper's ResNet-9 / PatchGAN) and schedule; one run in float32,
one with --amp. Their loss curves are drawn together and both are measured by the unpaired
protocol (`evaluate_run`: FID/KID of translated test images against the real test images of
the other domain, at the training scale). If bfloat16 changed what is learned, the curves
would drift apart by more than two float32 runs with different seeds do; the script also
trains that second float32 run (--seed 1) so the noise level is measured, not assumed.

    OMP_NUM_THREADS=1 python benchmarks/amp_quality.py --runs runs --steps 1000 --json amp.json

Needs bfloat16 autocast on the device: CUDA, or a CPU with AVX512-BF16/AMX.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cyclegan import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, train
from cyclegan.evaluate import evaluate_run
from cyclegan.rundir import RunDir
from cyclegan.report import read_loss_log

VARIANTS = {"fp32": (False, 0), "fp32_seed1": (False, 1), "amp": (True, 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", default="../shared/data/horse2zebra")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--load-size", type=int, default=72)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--print-freq", type=int, default=20, help="steps between logged loss rows")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=Path("docs/images/amp_losses.png"))
    args = parser.parse_args()

    results = {}
    for name, (amp, seed) in VARIANTS.items():
        cfg = TrainConfig(
            model=ModelConfig(),
            data=DataConfig(dataroot=args.dataroot, load_size=args.load_size, crop_size=args.crop_size,
                            num_workers=0),
            optim=OptimConfig(n_epochs=100, n_epochs_decay=100),
            run=RunConfig(name=f"amp_quality_{name}", checkpoints_dir=str(args.runs), seed=seed, amp=amp,
                          device=args.device, max_steps=args.steps, print_freq=args.print_freq, sample_freq=args.steps,
                          save_latest_freq=args.steps, report_freq=0, progress=False),
        )
        run_dir = train(cfg)
        metrics = evaluate_run(run_dir, size=args.load_size, progress=False)
        log = read_loss_log(RunDir(run_dir).loss_log)
        # From the log rather than a wall clock, so a run resumed from its checkpoint still reports it.
        results[name] = {
            "amp": amp, "seed": seed, "seconds_per_step": float(np.mean(log["sec_per_step"])),
            "metrics": {d: {k: v for k, v in m.items() if isinstance(v, float)} for d, m in metrics.items()},
            "final_losses": {k: float(np.mean(log[k][-10:])) for k in log if k not in ("step", "epoch", "lr", "sec_per_step")},
            "log": RunDir(run_dir).loss_log,
        }
        print(name, json.dumps(results[name]["metrics"]), flush=True)

    fig = Figure(figsize=(12, 3.4))
    FigureCanvasAgg(fig)
    for i, term in enumerate(("gan_ab", "cycle_a", "disc_b", "idt_a")):
        ax = fig.add_subplot(1, 4, i + 1)
        for name, style in (("fp32", "-"), ("amp", "--"), ("fp32_seed1", ":")):
            log = read_loss_log(results[name]["log"])
            window = 5  # logged rows
            smooth = np.convolve(log[term], np.ones(window) / window, mode="valid")
            ax.plot(log["step"][window - 1:], smooth, style, label=name)
        ax.set_title(term)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=80)

    # Same seed, so fp32 and amp see the same images in the same order from the same weights: their
    # losses differ by what bfloat16 changes; fp32_seed1 sets the scale of run-to-run noise.
    terms = list(results["fp32"]["final_losses"])
    logs = {name: np.array([read_loss_log(r["log"])[t] for t in terms]) for name, r in results.items()}
    for name in ("amp", "fp32_seed1"):
        rel = float(np.mean(np.abs(logs[name] - logs["fp32"]) / np.abs(logs["fp32"])))
        results[name]["loss_rel_diff_vs_fp32"] = rel
        print(f"{name}: losses differ from fp32 by {100 * rel:.1f}% on average (logged every {args.print_freq} steps)")

    for r in results.values():
        r["log"] = str(r["log"])
    print(f"{'run':<11} {'s/step':>7} {'FID A->B':>9} {'KID A->B':>17} {'FID B->A':>9} {'KID B->A':>17}")
    for name, r in results.items():
        m = r["metrics"]
        print(f"{name:<11} {r['seconds_per_step']:7.3f} " + " ".join(
            f"{m[d]['fid']:9.1f} {m[d]['kid_mean']:.4f} +- {m[d]['kid_std']:.4f}" for d in ("AtoB", "BtoA")))
    if args.json:
        args.json.write_text(json.dumps({"date": str(date.today()), "steps": args.steps, "results": results},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
