"""The unpaired evaluation protocol: translate a test domain, compare with the other one.

For horse2zebra this is the literature's protocol: all 120 horses of testA are
translated to zebras and compared (FID/KID, TF Inception features) with the 140
real zebras of testB; and the reverse. The cycle reconstruction error
|F(G(x)) - x| is reported on the same test images.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .config import TrainConfig
from .data.demo import demo_root
from .data.images import list_images, load_image, to_tensor
from .metrics import cycle_error, fid_kid
from .training.checkpoint import CheckpointError
from .translate import Translator


def default_cache_dir() -> Path:
    """Where features of real image folders are kept between evaluations."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cyclegan" / "inception_features"


def _cycle_error_on(translator: Translator, files: list[Path], channels: int) -> float:
    originals, reconstructions = [], []
    for path in files:
        x = to_tensor(load_image(path, channels)).unsqueeze(0)
        _, rec = translator.cycle(x)
        originals.append(x[0])
        reconstructions.append(rec[0].cpu())
    return cycle_error(originals, reconstructions)


def evaluate_run(
    run_dir: str | Path,
    dataroot: str | Path | None = None,
    phase: str = "test",
    device: str = "auto",
    batch_size: int = 50,
    cache_dir: Path | None = None,
    fid_method: str = "sqrtm",
    progress: bool = True,
) -> dict[str, dict]:
    """Metrics of a trained run in both directions: {"AtoB": {...}, "BtoA": {...}}.

    Translations are written to RUN_DIR/eval/<direction>/ (kept for inspection).
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory (no config.json)")
    cfg = TrainConfig.load(cfg_path)
    if cfg.data.dataset_mode != "unaligned":
        raise CheckpointError(f"{run_dir} was trained on an aligned dataset; this protocol needs {phase}A/{phase}B folders")
    root = Path(dataroot) if dataroot else (Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root())
    folders = {"A": root / f"{phase}A", "B": root / f"{phase}B"}
    if cfg.data.direction == "BtoA":
        folders = {"A": folders["B"], "B": folders["A"]}
    channels = {"A": cfg.model.input_nc, "B": cfg.model.output_nc}
    results: dict[str, dict] = {}
    for direction, source, target in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
        files = list_images(folders[source])
        list_images(folders[target])  # fail before translating anything when it is missing
        translator = Translator.from_run(run_dir, direction, device, with_inverse=True)
        out_dir = run_dir / "eval" / direction
        if out_dir.exists():
            for old in out_dir.glob("*.png"):
                old.unlink()
        translator.translate_files(files, out_dir, progress=progress)
        scores = fid_kid(out_dir, folders[target], cache_dir=cache_dir, batch_size=batch_size, device=device,
                         progress=progress, fid_method=fid_method)
        with torch.no_grad():
            scores["cycle_l1"] = _cycle_error_on(translator, files, channels[source])
        scores["fake_dir"], scores["real_dir"] = str(out_dir), str(folders[target])
        results[direction] = scores
    return results
