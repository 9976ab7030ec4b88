"""horse2zebra: the longest training this machine allows, measured by the literature's protocol.

Trains (or continues: the same command resumes) a CycleGAN on the 1067 horses and 1334 zebras
of ../shared/data/horse2zebra at reduced resolution, then translates all 120 test horses to
zebras (and the 140 test zebras to horses) and compares them with the real test images of the
other domain by FID/KID, at the training scale. Two references at the same scale put the numbers
in context: the untranslated test horses against the test zebras (what doing nothing scores) and
140 real training zebras against the test zebras (what a perfect generator would score with sets
this small). Every saved epoch checkpoint is measured the same way, for the trend. Writes
docs/horse2zebra.json and docs/images/h2z_*.png; docs/horse2zebra.md is written by hand from them.

    OMP_NUM_THREADS=1 python scripts/reproduce_horse2zebra.py --runs runs --epochs 5 --decay-epochs 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from cyclegan import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, train
from cyclegan.data.images import list_images, load_image
from cyclegan.evaluate import evaluate_run
from cyclegan.metrics import fid_kid
from cyclegan.rundir import RunDir, weights_file
from cyclegan.report import loss_terms, plot_terms, read_loss_log
from cyclegan.translate import Translator

# Published horse -> zebra FIDs at 256 px (see docs/horse2zebra.md for where each comes from)
PUBLISHED = [
    ("CycleGAN, the authors' released model (mmagic's evaluation)", 62.1),
    ("CycleGAN, the authors' released model (GAN Compression's evaluation, train+test zebras as reference)", 65.75),
    ("CycleGAN trained by the CUT authors", 77.2),
    ("CUT (Park et al. 2020)", 45.5),
]


def resized_copies(files: list[Path], folder: Path, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files):
        target = folder / f"{i:04d}.png"
        if not target.exists():
            load_image(path, 3).resize((size, size), Image.BICUBIC).save(target)
    return folder


def loss_plot(run_dir: Path, path: Path) -> None:
    log = read_loss_log(RunDir(run_dir).loss_log)
    gen_terms, disc_terms = loss_terms(log)
    fig = Figure(figsize=(11, 3.6))
    FigureCanvasAgg(fig)
    ax_g, ax_d = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    plot_terms(ax_g, log["step"], log, gen_terms, 10, "generators")
    plot_terms(ax_d, log["step"], log, disc_terms, 10, "discriminators")
    ax_g.set_ylabel("loss, mean of 10 log rows")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def checkpoint_trend(run_dir: Path, size: int) -> list[dict]:
    """FID/KID of each saved epoch checkpoint, both directions, on the resized test sets of evaluate_run."""
    rows = []
    for checkpoint in sorted(RunDir(run_dir).checkpoints_dir.glob("epoch_*")):
        row: dict = {"epoch": int(checkpoint.name.split("_")[1])}
        for direction, gen, inputs, real in (("AtoB", "gen_ab", "input_A", "real_B"), ("BtoA", "gen_ba", "input_B", "real_A")):
            out = RunDir(run_dir).eval_dir / "trend" / checkpoint.name / direction
            source = RunDir(run_dir).eval_dir / f"{inputs}_{size}"
            if not out.is_dir() or len(list(out.glob("*.png"))) != len(list(source.glob("*.png"))):
                translator = Translator.from_weights(weights_file(checkpoint, gen), RunDir(run_dir).config_file,
                                                     direction)
                translator.translate_files([source], out, progress=False)  # epoch checkpoints never change
            row[direction] = fid_kid(out, RunDir(run_dir).eval_dir / f"{real}_{size}", cache_dir=RunDir(run_dir).eval_dir / "features",
                                     progress=False)
        rows.append(row)
    return rows


def trend_plot(trend: list[dict], references: dict, path: Path) -> None:
    """FID and KID per saved epoch, each direction with its two references in its colour."""
    fig = Figure(figsize=(13, 3.6))
    FigureCanvasAgg(fig)
    epochs = [row["epoch"] for row in trend]
    for i, key in enumerate(("fid", "kid_mean")):
        ax = fig.add_subplot(1, 2, i + 1)
        for direction, label, colour in (("AtoB", "horse -> zebra", "C0"), ("BtoA", "zebra -> horse", "C1")):
            ax.plot(epochs, [row[direction][key] for row in trend], marker="o", color=colour, label=label)
            ax.axhline(references[direction]["untranslated"][key], color=colour, ls="--", lw=1,
                       label=f"{label}: input untranslated")
            ax.axhline(references[direction]["real"][key], color=colour, ls=":", lw=1,
                       label=f"{label}: real training images")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_mean", ""))
        ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 0.74, 1))
    fig.legend(*ax.get_legend_handles_labels(), loc="center right", fontsize=8)
    fig.savefig(path, dpi=80)


def test_grid(inputs: list[Path], outputs: list[Path], path: Path, n: int = 8) -> None:
    """Two rows per column pair: inputs on top, their translations below."""
    tiles = [(Image.open(a).convert("RGB"), Image.open(b).convert("RGB")) for a, b in zip(inputs[:n], outputs[:n])]
    w, h = tiles[0][0].size
    canvas = Image.new("RGB", (n * (w + 2) + 2, 2 * (h + 2) + 2), (255, 255, 255))
    for i, (a, b) in enumerate(tiles):
        canvas.paste(a, (2 + i * (w + 2), 2))
        canvas.paste(b, (2 + i * (w + 2), h + 4))
    canvas.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", default="../shared/data/horse2zebra")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--name", default="h2z_64")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--decay-epochs", type=int, default=5)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--eval-only", action="store_true", help="measure the latest checkpoint, train no further")
    args = parser.parse_args()

    cfg = TrainConfig(
        model=ModelConfig(generator="resnet_6blocks", ngf=32, ndf=32),
        data=DataConfig(dataroot=args.dataroot, load_size=72, crop_size=64, num_workers=0),
        optim=OptimConfig(n_epochs=args.epochs, n_epochs_decay=args.decay_epochs),
        run=RunConfig(name=args.name, checkpoints_dir=str(args.runs), print_freq=100, sample_freq=1334,
                      save_latest_freq=1000, save_epoch_freq=2, report_freq=2000, progress=False),
    )
    run_dir = cfg.run_dir() if args.eval_only else train(cfg)
    size = cfg.data.load_size
    results = evaluate_run(run_dir, size=size, fid_method="sqrtm", progress=False)
    root = Path(args.dataroot)
    evaluated = RunDir(run_dir).eval_dir
    references = {}  # per direction: the test inputs untranslated, and real training images of the target
    for direction, source, target, n in (("AtoB", "A", "B", 140), ("BtoA", "B", "A", 120)):
        real = evaluated / f"real_{target}_{size}"
        train_copies = resized_copies(list_images(root / f"train{target}")[:n], evaluated / f"train_{target}_{size}", size)
        references[direction] = {
            "untranslated": fid_kid(evaluated / f"input_{source}_{size}", real, cache_dir=None, progress=False),
            "real": fid_kid(train_copies, real, cache_dir=None, progress=False),
        }
    trend = checkpoint_trend(run_dir, size)
    log = read_loss_log(RunDir(run_dir).loss_log)
    for r in results.values():  # machine-specific paths: kept relative to the run directory
        r["fake_dir"], r["real_dir"] = (str(Path(r[k]).relative_to(run_dir)) for k in ("fake_dir", "real_dir"))
    out = {"config": cfg.to_dict(), "steps": int(log["step"][-1]), "hours": float(np.sum(log["sec_per_step"]) * 100 / 3600),
           "results": results, "references": references, "trend": trend}
    (args.docs / "horse2zebra.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    images = args.docs / "images"
    loss_plot(run_dir, images / "h2z_losses.png")
    trend_plot(trend, references, images / "h2z_trend.png")
    test_grid(sorted((evaluated / f"input_A_{size}").glob("*.png")), sorted((evaluated / "AtoB").glob("*.png")),
              images / "h2z_test_AtoB.png")
    test_grid(sorted((evaluated / f"input_B_{size}").glob("*.png")), sorted((evaluated / "BtoA").glob("*.png")),
              images / "h2z_test_BtoA.png")
    print(json.dumps({d: {k: v for k, v in r.items() if isinstance(v, float)} for d, r in results.items()}, indent=1))
    print(json.dumps(references, indent=1))


if __name__ == "__main__":
    main()
