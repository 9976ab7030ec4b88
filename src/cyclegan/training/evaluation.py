"""Scores while training: every --eval-freq steps, KID/FID per direction, cycle error and failure checks.

A fixed subset (--eval-size images, evenly spaced by name) of the held-out images of each domain
(DATAROOT/testA and testB, or those of --eval-dir) is translated by the current generators at the
training crop size; the translations are compared with every held-out image of the other domain
(also at the crop size) on TF Inception features. Each reading appends one row per direction to
RUN_DIR/eval_log.csv, a point per score to TensorBoard, and the report draws them. The checkpoint
with the lowest mean KID of the two directions so far is kept in RUN_DIR/checkpoints/best with
best.json beside the weights (step and scores): it is chosen on these evaluation images, so its
scores on them flatter it; the final checkpoint stays what `evaluate` and `translate` use.

The Inception network is loaded once (load_inception caches it) and the real images' features are
computed at the first reading and kept. Under torchrun rank 0 evaluates while the others wait at a
barrier. Readings fall on steps that are multiples of --eval-freq (and on the last step), so a
resumed run keeps the schedule; rows after the step it resumes from are dropped and measured again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import fsync_dir, fsync_file, write_text_atomic
from ..config import ConfigError, TrainConfig
from ..data.demo import demo_root
from ..data.images import list_images, load_image, to_tensor
from ..detectors import NAMES as DETECTORS, TITLES, detect, failed, findings_dict
from ..metrics.inception import extract_features, inception_weights_path, load_inception
from ..metrics.protocols import scores_from_features
from ..models import CycleGANNets
from .checkpoint import checkpoints_root, save_weights
from .distributed import ProcessGroup, barrier

EVAL_LOG = "eval_log.csv"
BEST = "best"
BEST_FILE = "best.json"
SCORES = ("kid_mean", "kid_std", "fid", "cycle_l1")
COLUMNS = ["step", "direction", *SCORES, "n_fake", "n_real", "seconds", *DETECTORS, "failed"]
BATCH = 4  # generator forward passes during an evaluation: small, to stay beside training's memory


def subset(files: list[Path], k: int) -> list[Path]:
    """`k` files evenly spaced over the sorted list (all of them when there are fewer)."""
    n = len(files)
    return files if n <= k else [files[(i * n) // k] for i in range(k)]


def read_rows(path: Path) -> list[dict]:
    """Complete rows of eval_log.csv (a line cut short by a crash is dropped)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if (row.get("step") or "").isdigit() and row.get("direction") in ("AtoB", "BtoA") \
                and row.get("failed") is not None:
            rows.append(row)
    return rows


def read_best(run_dir: Path) -> dict | None:
    try:
        return json.loads((checkpoints_root(run_dir) / BEST / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def recover_best(root: Path) -> None:
    """A crash between the two renames of `save_best` leaves the old best as .old-best: put it back."""
    old, best = root / ".old-best", root / BEST
    if old.is_dir() and not best.exists():
        os.replace(old, best)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(root / ".tmp-best", ignore_errors=True)


def save_best(run_dir: Path, nets: CycleGANNets, record: dict) -> Path:
    """Write checkpoints/best (the four networks' weights + best.json) the way checkpoints are written:
    assembled in a temporary folder, fsynced, then renamed into place. The prune of step
    checkpoints never touches it (its name starts with neither step_ nor epoch_)."""
    root = checkpoints_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    recover_best(root)
    tmp, best, old = root / ".tmp-best", root / BEST, root / ".old-best"
    tmp.mkdir()
    try:
        for name, net in nets.by_name().items():
            save_weights(net, tmp / f"{name}.safetensors")
        (tmp / BEST_FILE).write_text(json.dumps(record, indent=2) + "\n")
        for f in tmp.iterdir():
            fsync_file(f)
        fsync_dir(tmp)
        if best.exists():
            os.replace(best, old)
        os.replace(tmp, best)
        fsync_dir(root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_best(root)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return best


def _load_at(path: Path, size: int, channels: int) -> torch.Tensor:
    return to_tensor(load_image(path, channels).resize((size, size), Image.BICUBIC))


def _uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> uint8 (H, W, C), quantised as saving would."""
    return ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


class _Off:
    """Stands in when --eval-freq is 0: the loop's call costs nothing."""

    def after_step(self, *args, **kwargs) -> None:
        return None


class TrainingEvaluator:
    """Created once per run by `for_run`; `after_step` is the loop's one call."""

    @classmethod
    def for_run(cls, cfg: TrainConfig, run_dir: Path, device: torch.device, group: ProcessGroup,
                resume_step: int) -> "TrainingEvaluator | _Off":
        """Check everything an evaluation needs now (data, weights), not thousands of steps later."""
        if cfg.run.eval_freq == 0:
            return _Off()
        if cfg.data.dataset_mode == "aligned":
            raise ConfigError("--eval-freq needs unpaired data (testA/ and testB/); for aligned data evaluate "
                              "checkpoints with `cyclegan evaluate RUN --labels ...`")
        if cfg.model.method == "cogan":
            raise ConfigError("--eval-freq is not available for cogan (translating needs a latent search per image)")
        inception_weights_path()  # MetricsDependencyError with the install line, before training starts
        root = Path(cfg.run.eval_dir or cfg.data.dataroot or demo_root())
        folders = {"A": root / "testA", "B": root / "testB"}
        if cfg.data.direction == "BtoA":
            folders = {"A": folders["B"], "B": folders["A"]}
        files = {d: list_images(f) for d, f in folders.items()}  # DatasetError naming a missing folder
        for d, found in files.items():
            if len(found) < 2:
                raise ConfigError(f"--eval-freq needs at least 2 images in {folders[d]}, found {len(found)}")
        return cls(cfg, run_dir, device, group, resume_step, files)

    def __init__(self, cfg: TrainConfig, run_dir: Path, device: torch.device, group: ProcessGroup,
                 resume_step: int, files: dict[str, list[Path]]):
        self.freq, self.k, self.size = cfg.run.eval_freq, cfg.run.eval_size, cfg.data.crop_size
        self.run_dir, self.device, self.group = Path(run_dir), device, group
        self.channels = {"A": cfg.model.input_nc, "B": cfg.model.output_nc}
        self.files = files
        self.path = self.run_dir / EVAL_LOG
        self._real: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}  # domain -> (features, uint8 images)
        self._inputs: dict[str, torch.Tensor] = {}
        self.best_kid = float("inf")
        self._advised: set[str] = set()
        if group.is_main:
            recover_best(checkpoints_root(self.run_dir))
            best = read_best(self.run_dir)
            if best is not None and resume_step > 0:
                self.best_kid = float(best["mean_kid"])
            kept = [r for r in read_rows(self.path) if int(r["step"]) <= resume_step] if resume_step > 0 else []
            self._write(kept)

    def _write(self, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, text.getvalue())

    def _prepare(self) -> None:
        """Load the evaluation images and the real images' features, once per run."""
        if self._real:
            return
        model = load_inception(self.device)
        for d in ("A", "B"):
            chosen = set(subset(self.files[d], self.k))
            images, inputs = [], []
            for p in self.files[d]:
                t = _load_at(p, self.size, self.channels[d])
                images.append(_uint8(t))
                if p in chosen:
                    inputs.append(t)
            feats = extract_features(images, device=self.device, progress=False, model=model)
            self._real[d] = (feats, images)
            self._inputs[d] = torch.stack(inputs)

    def after_step(self, step: int, nets: CycleGANNets, board=None, last: bool = False) -> None:
        """Evaluate when `step` is due (a multiple of --eval-freq, or the last step); every process calls it."""
        if step % self.freq != 0 and not last:
            return
        if self.group.is_main:
            self.evaluate(step, nets, board)
        barrier(self.group)  # the other processes wait for rank 0's reading

    @torch.no_grad()
    def evaluate(self, step: int, nets: CycleGANNets, board=None) -> list[dict]:
        done = [r for r in read_rows(self.path) if int(r["step"]) == step]
        if len(done) == 2:
            return done  # a stop right after a reading: measured already
        start = time.perf_counter()
        self._prepare()
        was_training = nets.gen_ab.training
        nets.gen_ab.eval()
        nets.gen_ba.eval()
        model = load_inception(self.device)
        results: dict[str, dict] = {}
        try:
            for direction, source, target, forward, backward in (
                    ("AtoB", "A", "B", nets.gen_ab, nets.gen_ba), ("BtoA", "B", "A", nets.gen_ba, nets.gen_ab)):
                t0 = time.perf_counter()
                x_all = self._inputs[source]
                fakes, error = [], 0.0
                for i in range(0, len(x_all), BATCH):
                    x = x_all[i:i + BATCH].to(self.device)
                    fake = forward(x).float()
                    error += float((backward(fake).float() - x).abs().sum())
                    fakes.append(fake.cpu())
                fake = torch.cat(fakes)
                feats = extract_features(fake, device=self.device, progress=False, model=model)
                real_feats, real_images = self._real[target]
                scores = scores_from_features(feats, real_feats, fid_method="fast")
                scores["cycle_l1"] = error / x_all.numel()
                scores["detectors"] = findings_dict(detect([_uint8(t) for t in x_all], [_uint8(t) for t in fake],
                                                           real_images))
                scores["seconds"] = time.perf_counter() - t0
                results[direction] = scores
        finally:
            nets.gen_ab.train(was_training)
            nets.gen_ba.train(was_training)
        rows = [{"step": step, "direction": d, **{k: f"{s[k]:.6g}" for k in SCORES}, "n_fake": s["n_fake"],
                 "n_real": s["n_real"], "seconds": f"{s['seconds']:.2f}",
                 **{n: f"{s['detectors'][n]['value']:.4g}" for n in DETECTORS}, "failed": ";".join(failed(s["detectors"]))}
                for d, s in results.items()]
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerows(rows)
        mean_kid = float(np.mean([s["kid_mean"] for s in results.values()]))
        improved = mean_kid < self.best_kid
        if improved:
            self.best_kid = mean_kid
            save_best(self.run_dir, nets, {
                "step": step, "mean_kid": mean_kid,
                "scores": {d: {k: s[k] for k in (*SCORES, "n_fake", "n_real")} for d, s in results.items()},
                "chosen_on": f"{len(self._inputs['A'])} + {len(self._inputs['B'])} evaluation images at "
                             f"{self.size} px (RUN_DIR/{EVAL_LOG}); scores on the images a checkpoint was chosen "
                             "on flatter it",
            })
        if board is not None:
            board.log_scalars(step, {f"eval/{d}_{k}": s[k] for d, s in results.items() for k in SCORES})
        self._print(step, results, improved, time.perf_counter() - start)
        return rows

    def _print(self, step: int, results: dict[str, dict], improved: bool, seconds: float) -> None:
        parts = [f"{d} KID {s['kid_mean']:.4f} +- {s['kid_std']:.4f} FID {s['fid']:.1f} cycle {s['cycle_l1']:.3f}"
                 for d, s in results.items()]
        tqdm.write(f"eval step {step}: " + " | ".join(parts) + f" ({seconds:.1f} s)"
                   + ("; new best, saved to checkpoints/best" if improved else ""))
        for d, s in results.items():
            bad = failed(s["detectors"])
            if bad:
                tqdm.write(f"eval step {step}: {d} failure checks: " + "; ".join(
                    f"{TITLES[n]} ({s['detectors'][n]['message']})" for n in bad))
            for name in bad:  # the advice once per run and check, not at every reading
                if name not in self._advised:
                    self._advised.add(name)
                    tqdm.write(f"  {TITLES[name]}: {s['detectors'][name]['advice']}")
