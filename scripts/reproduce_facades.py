"""The paper's comparisons on facades, at a scale that fits a small machine: the baselines
(section 5.1, Tables 2-3: pix2pix, SimGAN, BiGAN/ALI, CoGAN) and the ablation of the objective (Tables 4-5:
cycle alone, GAN alone, GAN + forward cycle, GAN + backward cycle).

Every variant trains on the 400 facades training images (photo = A, labels = B); all but pix2pix
see them unpaired. Each is evaluated on the 106 test pairs at the training scale (`--size`, the
load size): photo -> labels by per-pixel / per-class accuracy and class IoU, labels -> photo by
FID/KID and RMSE; mode collapse is measured as the spread of the outputs across inputs. Writes
docs/facades.md, docs/facades.json and docs/images/facades_*.png. Runs that already finished are
evaluated again without retraining (delete RUNS/NAME to retrain one).

    python scripts/reproduce_facades.py --dataroot ../shared/data/facades --steps 2000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan import DataConfig, LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig, train
from cyclegan.methods import with_method_defaults
from cyclegan.evaluate import evaluate_aligned_run
from cyclegan.rundir import RunDir
from cyclegan.report import read_loss_log

ABLATIONS = {"full": "CycleGAN (full)", "cycle_only": "Cycle alone", "gan_only": "GAN alone",
             "gan_forward": "GAN + forward cycle", "gan_backward": "GAN + backward cycle"}
BASELINES = {"cogan": "CoGAN", "bigan": "BiGAN/ALI", "simgan": "SimGAN", "pix2pix": "pix2pix (paired)"}
# The paper's Cityscapes numbers (per-pixel acc / per-class acc / class IoU)
PAPER_PHOTO_TO_LABELS = {  # Tables 3 and 5
    "full": (0.58, 0.22, 0.16), "cycle_only": (0.10, 0.05, 0.02), "gan_only": (0.53, 0.11, 0.07),
    "gan_forward": (0.49, 0.11, 0.07), "gan_backward": (0.01, 0.06, 0.01), "cogan": (0.45, 0.11, 0.08),
    "bigan": (0.41, 0.13, 0.07), "simgan": (0.47, 0.11, 0.07), "pix2pix": (0.85, 0.40, 0.32),
}
PAPER_LABELS_TO_PHOTO = {  # Tables 2 and 4 (FCN scores of generated photos)
    "full": (0.52, 0.17, 0.11), "cycle_only": (0.22, 0.07, 0.02), "gan_only": (0.51, 0.11, 0.08),
    "gan_forward": (0.55, 0.18, 0.12), "gan_backward": (0.39, 0.14, 0.06), "cogan": (0.40, 0.10, 0.06),
    "bigan": (0.19, 0.06, 0.02), "simgan": (0.20, 0.10, 0.04), "pix2pix": (0.71, 0.25, 0.18),
}


HAND_WRITTEN = "## Reading of these numbers (written by hand)"
GRIDS = "## Sample grids at the last step (rows: photo, G(photo), F(G(photo)); labels, F(labels), G(F(labels)))"


def spread(folder: Path) -> float:
    """Mean over pixels of the std across images (0-255): near 0 when every input gives the same output."""
    stack = np.stack([np.asarray(Image.open(p).convert("RGB").resize((64, 64)), dtype=np.float64)
                      for p in sorted(folder.glob("*.png"))])
    return float(stack.std(axis=0).mean())


def variant_config(base: TrainConfig, name: str) -> TrainConfig:
    run = dataclasses.replace(base.run, name=name)
    if name in ABLATIONS:
        return dataclasses.replace(base, loss=LossConfig.for_ablation(name), run=run)
    cfg = with_method_defaults(dataclasses.replace(base, run=run), name)  # type: ignore[arg-type]
    # Same generator and discriminator as the CycleGAN rows, so the objectives are what differs
    # (pix2pix's own U-Net-256 needs 256 px inputs). CoGAN keeps its latent-code networks.
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, generator=base.model.generator))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", default="../shared/data/facades")
    parser.add_argument("--runs", type=Path, default=Path("runs/facades"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--load-size", type=int, default=72)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--variants", nargs="+", default=[*BASELINES, *ABLATIONS],
                        choices=[*BASELINES, *ABLATIONS])
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc-only", action="store_true", help="rewrite docs/facades.md from docs/facades.json")
    args = parser.parse_args()
    if args.doc_only:
        write_doc(args, json.loads((args.docs / "facades.json").read_text()))
        return

    steps_per_epoch = 400
    epochs = max(1, args.steps // steps_per_epoch)
    base = TrainConfig(
        model=ModelConfig(generator="resnet_6blocks", ngf=args.ngf, ndf=args.ngf),
        data=DataConfig(dataroot=args.dataroot, dataset_mode="aligned", load_size=args.load_size,
                        crop_size=args.crop_size, num_workers=0),
        # the paper's shape of schedule, compressed: half the epochs constant, half decaying to 0
        optim=OptimConfig(n_epochs=epochs - epochs // 2, n_epochs_decay=epochs // 2),
        run=RunConfig(checkpoints_dir=str(args.runs), seed=args.seed, max_steps=args.steps, progress=False,
                      print_freq=20, sample_freq=args.steps, save_latest_freq=args.steps, report_freq=0),
    )
    results_path = args.docs / "facades.json"
    rows = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.variants:
        cfg = variant_config(base, name)
        if cfg.model.method == "cogan":
            # Batch 8 (for batch norm's statistics) and as many steps as the others: its small
            # DCGAN networks make a step of 8 cost about what a CycleGAN step of 1 costs.
            epochs = max(2, args.steps * 8 // steps_per_epoch)
            cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, n_epochs=epochs - epochs // 2,
                                                                     n_epochs_decay=epochs // 2))
        start = time.perf_counter()
        run_dir = train(cfg)
        minutes = (time.perf_counter() - start) / 60
        start = time.perf_counter()
        scores = evaluate_aligned_run(run_dir, labels="B", fid_method="fast", progress=False, size=args.load_size)
        for direction in ("AtoB", "BtoA"):
            scores[direction]["spread"] = spread(Path(scores[direction]["fake_dir"]))
        log = read_loss_log(RunDir(run_dir).loss_log)
        scores["train_minutes"] = minutes if minutes > 0.1 else rows.get(name, {}).get("train_minutes", minutes)
        scores["eval_minutes"] = (time.perf_counter() - start) / 60
        scores["steps"] = int(log["step"][-1])
        scores["method"] = cfg.model.method
        scores["batch_size"] = cfg.optim.batch_size
        rows[name] = scores
        grid = RunDir(run_dir).sample_files()[-1][1]
        (args.docs / "images").mkdir(parents=True, exist_ok=True)
        Image.open(grid).save(args.docs / "images" / f"facades_{name}.png", optimize=True)
        rows["real_spread"] = {"labels": spread(RunDir(run_dir).eval_dir / "real_B"), "photos": spread(RunDir(run_dir).eval_dir / "real_A")}
        results_path.write_text(json.dumps(rows, indent=2, default=str) + "\n")
        print(f"{name}: trained {minutes:.1f} min, photo->labels pixel acc {scores['AtoB']['per_pixel_acc']:.3f}, "
              f"labels->photo FID {scores['BtoA']['fid']:.1f}", flush=True)
    write_doc(args, rows)


def _table(rows: dict, names: dict[str, str]) -> list[str]:
    lines = [
        "| method | P->L pixel acc | P->L class acc | P->L IoU | P->L spread | paper P->L | L->P FID | L->P KID "
        "| L->P RMSE | L->P spread | paper L->P (FCN) | cycle L1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in names.items():
        if name not in rows:
            continue
        a, b = rows[name]["AtoB"], rows[name]["BtoA"]
        p, q = PAPER_PHOTO_TO_LABELS[name], PAPER_LABELS_TO_PHOTO[name]
        cycle = f"{b['cycle_l1']:.3f}" if rows[name]["method"] == "cyclegan" else "-"
        lines.append(
            f"| {label} | {a['per_pixel_acc']:.3f} | {a['per_class_acc']:.3f} | {a['class_iou']:.3f} | {a['spread']:.1f} "
            f"| {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} | {b['fid']:.1f} | {b['kid_mean']:.3f} | {b['rmse']:.1f} "
            f"| {b['spread']:.1f} | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | {cycle} |")
    return lines


def write_doc(args: argparse.Namespace, rows: dict) -> None:
    total = sum(v["train_minutes"] + v["eval_minutes"] for k, v in rows.items() if k in {**ABLATIONS, **BASELINES})
    lines = [
        "# Facades: the paper's baselines and ablation at small scale",
        "",
        f"Measured {date.today()} on the 2-core x86_64 CPU development machine (one thread per run, "
        f"OMP_NUM_THREADS=1, sharing the machine with other jobs), about {total:.0f} minutes in all. Each variant: "
        f"{args.steps} steps of batch 1 ({args.steps // 400} epochs of the 400 training images; CoGAN "
        f"{args.steps} steps of batch 8, about the same compute with its smaller networks), half at lr 2e-4 and half decaying to 0; "
        f"photo = A, labels = B; ResNet-6 generators and 70x70 PatchGANs with {args.ngf} base filters; {args.load_size} px "
        f"loads, {args.crop_size} px crops; seed {args.seed}; no identity loss (as in the paper). Every variant "
        "but pix2pix trains unpaired. Test: the 106 test pairs resized to "
        f"{args.load_size} px, the scale the networks were trained at (`cyclegan evaluate RUN --labels B --size "
        f"{args.load_size}`). The paper trains 200 epochs at 256 px on Cityscapes: this is about 1/100 of its "
        "compute per run, so the numbers show tendencies, not the paper's values.",
        "",
        "Regenerate: `OMP_NUM_THREADS=1 python scripts/reproduce_facades.py --dataroot ../shared/data/facades "
        f"--steps {args.steps} --ngf {args.ngf}` (raw numbers: docs/facades.json).",
        "",
        "Columns: P->L = photo -> labels, L->P = labels -> photo. Photo -> labels per-pixel / per-class accuracy and class IoU over the 12 CMP classes "
        "(every output pixel mapped to the nearest colour of the palette learned from the training label maps), "
        "and the output spread; labels -> photo FID and KID (TF Inception, against the 106 real test photos; small "
        "sets bias FID upwards, so compare rows, not published values), RMSE (0-255) and the output spread; the "
        "paper's Cityscapes numbers for reference (its labels -> photo column is an FCN score, not FID). Output "
        "spread: mean over pixels of the standard deviation across the 106 outputs (0-255); near 0 means every "
        f"input gives the same output (mode collapse). The real label maps have {rows['real_spread']['labels']:.1f}, "
        f"the real photos {rows['real_spread']['photos']:.1f}. Cycle L1: |G(F(labels)) - labels| for the CycleGAN "
        "objectives.",
        "",
        "## Baselines (paper, Tables 2-3)",
        "",
        *_table(rows, {**BASELINES, "full": ABLATIONS["full"]}),
        "",
        "## Ablation of the objective (paper, Tables 4-5)",
        "",
        *_table(rows, ABLATIONS),
        "",
    ]
    grids = [GRIDS, ""]
    for name, label in {**BASELINES, **ABLATIONS}.items():
        if name in rows:
            grids.append(f"{label}:\n\n![{name}](images/facades_{name}.png)\n")
    # A hand-written reading of the numbers (from HAND_WRITTEN to the grids) survives regeneration.
    page = args.docs / "facades.md"
    old = page.read_text() if page.exists() else ""
    kept = old[old.index(HAND_WRITTEN):old.index(GRIDS)] if HAND_WRITTEN in old and GRIDS in old else ""
    page.write_text("\n".join(lines) + "\n" + kept + "\n".join(grids) + "\n")
    print(f"wrote {args.docs / 'facades.md'}")


if __name__ == "__main__":
    main()
