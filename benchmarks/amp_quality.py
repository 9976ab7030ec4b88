"""Does --amp train the same model? Seeds of float32 and of bfloat16 autocast, side by side.

Same data, networks and schedule; N seeds trained in float32 and the same N seeds with --amp
(seed s of both sees the same images in the same order from the same initial weights). Their
loss curves are drawn together and every run is measured by the unpaired protocol
(`evaluate_run`: FID/KID of the translated test images against the real test images of the
other domain, at the training scale). If bfloat16 changed what is learned, the --amp runs would
land outside the spread of the float32 seeds; the float32 seeds measure that noise level, it is
not assumed. Runs alternate float32 / --amp, and the JSON is rewritten after every run, so a run
cut short still leaves complete pairs; a run already in the JSON is not trained again.

    OMP_NUM_THREADS=1 python benchmarks/amp_quality.py --runs runs --steps 1000 --seeds 3 \
        --generator resnet_6blocks --ngf 32 --ndf 32 --json docs/amp_quality.json

Needs bfloat16 autocast on the device: CUDA, or a CPU with AVX512-BF16/AMX.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cyclegan import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, train
from cyclegan.evaluate import evaluate_run
from cyclegan.rundir import RunDir
from cyclegan.report import read_loss_log

TERMS = ("gan_ab", "gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "disc_a", "disc_b")


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values)),
            "values": [float(v) for v in values]}


def summarise(results: dict, tail: int) -> dict:
    """Per variant: FID/KID both ways and the mean of each loss over the last `tail` logged rows."""
    out = {}
    for variant in ("fp32", "amp"):
        runs = [r for r in results.values() if r["variant"] == variant]
        if not runs:
            continue
        rows = {f"{k}_{d}": spread([r["metrics"][d][k] for r in runs])
                for d in ("AtoB", "BtoA") for k in ("fid", "kid_mean")}
        for t in TERMS:
            rows[f"loss_{t}"] = spread([float(np.mean(read_loss_log(r["log"])[t][-tail:])) for r in runs])
        rows["seconds_per_step"] = spread([r["seconds_per_step"] for r in runs])
        out[variant] = rows
    if "fp32" in out and "amp" in out:
        # Inside the spread: the --amp mean lies between the smallest and largest float32 seed.
        out["amp_inside_fp32_spread"] = {k: out["fp32"][k]["min"] <= out["amp"][k]["mean"] <= out["fp32"][k]["max"]
                                        for k in out["fp32"] if k != "seconds_per_step"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", default="../shared/data/horse2zebra")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (float32 and --amp)")
    parser.add_argument("--only-seeds", type=int, nargs="+", default=None,
                        help="train only these of the seeds (to split the work over processes, each with its own "
                             "--json; a last run over all seeds with the merged JSON then only summarises)")
    parser.add_argument("--only-variants", nargs="+", choices=["fp32", "amp"], default=["fp32", "amp"],
                        help="train only these variants (to split the work over processes, as --only-seeds)")
    parser.add_argument("--load-size", type=int, default=72)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--generator", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--print-freq", type=int, default=20, help="steps between logged loss rows")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=Path("docs/images/amp_losses.png"))
    args = parser.parse_args()

    results: dict = {}
    if args.json and args.json.is_file():
        old = json.loads(args.json.read_text())
        if old.get("steps") == args.steps and old.get("model") == [args.generator, args.ngf, args.ndf]:
            results = old.get("runs", {})
    seeds = args.only_seeds if args.only_seeds is not None else range(args.seeds)
    order = [(variant, seed) for seed in seeds for variant in ("fp32", "amp") if variant in args.only_variants]
    for variant, seed in order:
        name = f"{variant}_seed{seed}"
        if name in results:
            continue
        cfg = TrainConfig(
            model=ModelConfig(generator=args.generator, ngf=args.ngf, ndf=args.ndf),
            data=DataConfig(dataroot=args.dataroot, load_size=args.load_size, crop_size=args.crop_size,
                            num_workers=0),
            optim=OptimConfig(n_epochs=100, n_epochs_decay=100),
            run=RunConfig(name=f"amp_quality_{name}", checkpoints_dir=str(args.runs), seed=seed,
                          amp=variant == "amp", device=args.device, max_steps=args.steps,
                          print_freq=args.print_freq, sample_freq=args.steps, save_latest_freq=args.steps,
                          report_freq=0, progress=False),
        )
        run_dir = train(cfg)
        metrics = evaluate_run(run_dir, size=args.load_size, progress=False)
        log = read_loss_log(RunDir(run_dir).loss_log)
        # From the log rather than a wall clock, so a run resumed from its checkpoint still reports it.
        results[name] = {
            "variant": variant, "seed": seed, "seconds_per_step": float(np.median(log["sec_per_step"])),
            "metrics": {d: {k: v for k, v in m.items() if isinstance(v, float)} for d, m in metrics.items()},
            "log": str(RunDir(run_dir).loss_log),
        }
        print(name, json.dumps(results[name]["metrics"]), flush=True)
        if args.json:
            args.json.write_text(json.dumps({
                "date": str(date.today()), "cpu": cpu_model(), "steps": args.steps,
                "model": [args.generator, args.ngf, args.ndf], "load_size": args.load_size,
                "crop_size": args.crop_size, "runs": results,
                "summary": summarise(results, tail=max(1, len(log["step"]) // 4))}, indent=1) + "\n")

    tail = max(1, args.steps // args.print_freq // 4)
    summary = summarise(results, tail)
    fig = Figure(figsize=(12, 3.4))
    FigureCanvasAgg(fig)
    for i, term in enumerate(("gan_ab", "cycle_a", "disc_b", "idt_a")):
        ax = fig.add_subplot(1, 4, i + 1)
        for name, r in sorted(results.items()):
            log = read_loss_log(r["log"])
            window = 10  # logged rows
            smooth = np.convolve(log[term], np.ones(window) / window, mode="valid")
            ax.plot(log["step"][window - 1:], smooth, "-" if r["variant"] == "fp32" else "--",
                    color=f"C{r['seed']}", label=name, linewidth=1)
        ax.set_title(term)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("solid: float32, dashed: --amp (bfloat16); colour = seed", fontsize=9)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=80)

    print(f"{'':<18} {'float32 mean [min, max]':>28} {'--amp mean [min, max]':>28}  inside")
    for key in summary.get("fp32", {}):
        row = f"{key:<18}"
        for v in ("fp32", "amp"):
            s = summary.get(v, {}).get(key)
            row += f" {s['mean']:10.4f} [{s['min']:.4f}, {s['max']:.4f}]" if s else " " * 29
        print(row, summary.get("amp_inside_fp32_spread", {}).get(key, ""))
    if args.json:
        args.json.write_text(json.dumps({
            "date": str(date.today()), "cpu": cpu_model(), "steps": args.steps,
            "model": [args.generator, args.ngf, args.ndf], "load_size": args.load_size,
            "crop_size": args.crop_size, "loss_tail_rows": tail, "runs": results, "summary": summary},
            indent=1) + "\n")


if __name__ == "__main__":
    main()
