"""The paper's ablation (Tables 4-5) on facades, at a scale that fits a small machine.

Trains the full objective and its four ablations (cycle alone, GAN alone, GAN + forward
cycle, GAN + backward cycle; no identity loss, as in the paper) unpaired on the facades
training set, evaluates each on the 106 test pairs (photo -> labels: per-pixel / per-class
accuracy and class IoU; labels -> photo: RMSE, FID/KID), measures mode collapse as the
spread of the outputs across different inputs, and writes docs/ablation.md.

    python scripts/reproduce_ablation.py --dataroot ../shared/data/facades --steps 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan import DataConfig, LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, train
from cyclegan.evaluate import evaluate_aligned_run

VARIANTS = ("full", "cycle_only", "gan_only", "gan_forward", "gan_backward")
LABELS = {"full": "CycleGAN (full)", "cycle_only": "Cycle alone", "gan_only": "GAN alone",
          "gan_forward": "GAN + forward cycle", "gan_backward": "GAN + backward cycle"}
# The paper's Cityscapes numbers (per-pixel acc / per-class acc / class IoU), Tables 4-5
PAPER_PHOTO_TO_LABELS = {"full": (0.58, 0.22, 0.16), "cycle_only": (0.10, 0.05, 0.02), "gan_only": (0.53, 0.11, 0.07),
                         "gan_forward": (0.49, 0.11, 0.07), "gan_backward": (0.01, 0.06, 0.01)}


def spread(folder: Path) -> float:
    """Mean over pixels of the std across images (0-255): near 0 when every input gives the same output."""
    stack = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64)), dtype=np.float64)
                      for p in sorted(folder.glob("*.png"))])
    return float(stack.std(axis=0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", default="../shared/data/facades")
    parser.add_argument("--runs", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--load-size", type=int, default=72)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = TrainConfig(
        model=ModelConfig(generator="resnet_6blocks", ngf=args.ngf, ndf=args.ngf),
        data=DataConfig(dataroot=args.dataroot, dataset_mode="aligned", load_size=args.load_size,
                        crop_size=args.crop_size, num_workers=0),
        # 400 steps per epoch: the whole budget at the constant rate, like the paper's first half
        optim=OptimConfig(n_epochs=100, n_epochs_decay=100),
        run=RunConfig(checkpoints_dir=str(args.runs), seed=args.seed, max_steps=args.steps, progress=False,
                      print_freq=50, sample_freq=args.steps, save_latest_freq=args.steps, report_freq=0),
    )
    rows = {}
    for name in VARIANTS:
        cfg = dataclasses.replace(base, loss=LossConfig.for_ablation(name), run=dataclasses.replace(base.run, name=name))
        start = time.perf_counter()
        run_dir = train(cfg)
        minutes = (time.perf_counter() - start) / 60
        scores = evaluate_aligned_run(run_dir, labels="B", fid_method="fast", progress=False)
        scores["AtoB"]["spread"] = spread(Path(scores["AtoB"]["fake_dir"]))
        scores["BtoA"]["spread"] = spread(Path(scores["BtoA"]["fake_dir"]))
        scores["minutes"] = minutes
        rows[name] = scores
        grid = sorted((run_dir / "samples").glob("*.png"))[-1]
        (args.docs / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(grid, args.docs / "images" / f"ablation_{name}.png")
        print(name, json.dumps({d: {k: v for k, v in s.items() if isinstance(v, float)} for d, s in scores.items()
                                if isinstance(s, dict)}), flush=True)

    real_labels = spread(args.runs / "full" / "eval" / "real_B")
    real_photos = spread(args.runs / "full" / "eval" / "real_A")
    (args.docs / "ablation.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    lines = [
        "# Ablation of the objective (paper, Tables 4-5) on facades",
        "",
        f"Measured {date.today()} on a 2-core CPU. Each variant: {args.steps} steps (batch 1) of unpaired training "
        f"on the 400 facades training images (photo = A, labels = B), ResNet-6 generators and PatchGANs with "
        f"{args.ngf} base filters, {args.load_size} px loads, {args.crop_size} px crops, seed {args.seed}, no identity "
        "loss (as in the paper). Evaluated on the 106 test pairs at their full 256 px. This is about 1/270 of the "
        "paper's training (200 epochs of 400 steps at 256 px, on Cityscapes), so the numbers show tendencies, not "
        "the paper's values.",
        "",
        "Regenerate: `python scripts/reproduce_ablation.py --dataroot ../shared/data/facades "
        f"--steps {args.steps} --ngf {args.ngf}` (raw numbers: docs/ablation.json).",
        "",
        "## Photo -> labels (per-pixel acc / per-class acc / class IoU, 12 CMP classes)",
        "",
        "| objective | per-pixel | per-class | IoU | output spread | paper (Cityscapes) |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        s = rows[name]["AtoB"]
        p = PAPER_PHOTO_TO_LABELS[name]
        lines.append(f"| {LABELS[name]} | {s['per_pixel_acc']:.3f} | {s['per_class_acc']:.3f} | {s['class_iou']:.3f} | "
                     f"{s['spread']:.1f} | {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} |")
    lines += [
        "",
        f"Output spread: mean over pixels of the standard deviation across the 106 outputs (0-255); the real "
        f"label maps have {real_labels:.1f}. Near 0 means every input gives the same output (mode collapse).",
        "",
        "## Labels -> photo",
        "",
        "| objective | FID | KID | RMSE | output spread | cycle L1 (labels) |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        s = rows[name]["BtoA"]
        lines.append(f"| {LABELS[name]} | {s['fid']:.1f} | {s['kid_mean']:.3f} | {s['rmse']:.1f} | {s['spread']:.1f} | "
                     f"{s['cycle_l1']:.3f} |")
    lines += [
        "",
        f"The real test photos have an output spread of {real_photos:.1f}. FID/KID against the 106 real test "
        "photos (small sets: FID is biased upwards; compare rows, not with published values).",
        "",
        "## Sample grids at the last step",
        "",
    ]
    lines += [f"{LABELS[n]}:\n\n![{n}](images/ablation_{n}.png)\n" for n in VARIANTS]
    (args.docs / "ablation.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.docs / 'ablation.md'}")


if __name__ == "__main__":
    main()
