"""What `cyclegan evaluate` prints and checks around `evaluate.py`: the results table, the
hint about `--size`, and one-line errors for folder options that are not folders."""

from __future__ import annotations

from pathlib import Path

from .config import ConfigError
from .data.datasets import split_aligned
from .data.images import DatasetError, list_images
from .rundir import RunDir, RunDirError
from .data.demo import demo_root

# The table docs/commands/evaluate.md shows (tests/test_evaluate_cli.py compares the two).
TABLE_HEADER = f"{'direction':<10}{'FID':>9}{'KID x100':>18}{'cycle L1':>10}{'fake':>6}{'real':>6}"

# Preprocessing modes that resize the training images to --load-size before cropping.
_RESIZING = ("resize_and_crop", "scale_width", "scale_width_and_crop")


def results_table(results: dict[str, dict], protocol: str | None = None) -> str:
    """The run form's results: a table for the unpaired protocol, one line per direction for paired data.
    A `protocol` other than the default is named beside each direction ("AtoB (cut)")."""
    from .metrics.protocols import DEFAULT_PROTOCOL

    def label(direction: str) -> str:
        return direction if protocol in (None, DEFAULT_PROTOCOL) else f"{direction} ({protocol})"

    if all("n_fake" in scores for scores in results.values()):
        rows = [TABLE_HEADER]
        for direction, s in results.items():
            kid = f"{100 * s['kid_mean']:.2f} +- {100 * s['kid_std']:.2f}"
            rows.append(f"{label(direction):<10}{s['fid']:>9.2f}{kid:>18}{s['cycle_l1']:>10.4f}{s['n_fake']:>6}"
                        f"{s['n_real']:>6}")
        return "\n".join(rows)
    lines = []
    for direction, scores in results.items():
        numbers = ", ".join(f"{k} {v:.4g}" for k, v in scores.items() if isinstance(v, (int, float)))
        lines.append(f"{label(direction)}: {numbers}")
    return "\n".join(lines)


def check_folder_options(fake: Path | None, real: Path | None, labels_from: Path | None) -> None:
    """One line naming the option when a folder option is missing or a file."""
    for option, folder, what in (("--fake", fake, "the folder of generated images (e.g. translate's --output-dir)"),
                                 ("--real", real, "the folder of real images"),
                                 ("--labels-from", labels_from, "a folder of label maps")):
        if folder is None or folder.is_dir():
            continue
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{option} {folder} {problem}; pass {what}")


def size_hint(run_dir: Path, dataroot: Path | None, phase: str) -> str | None:
    """A note when the run learned at a smaller scale than its test images have, else None.

    The default stays the faithful one (the images' own size, as published numbers are
    measured); this only says that --size exists and what to pass.
    """
    try:
        cfg = RunDir(run_dir).read_config()
    except (ConfigError, RunDirError, OSError):
        return None  # evaluate_run gives the one-line error
    if cfg.data.preprocess not in _RESIZING:
        return None
    root = Path(dataroot) if dataroot else (Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root())
    try:
        if cfg.data.dataset_mode == "aligned":
            width, height = split_aligned(list_images(root / phase)[0])[0].size
        else:
            from PIL import Image

            with Image.open(list_images(root / f"{phase}A")[0]) as img:
                width, height = img.size
    except (DatasetError, OSError):
        return None
    side = width if cfg.data.preprocess.startswith("scale_width") else min(width, height)
    if side < 1.5 * cfg.data.load_size:
        return None
    return (f"{run_dir} learned from images resized to {cfg.data.load_size} px ({cfg.data.crop_size} px crops); "
            f"its {phase} images are {width}x{height}, so things look {side / cfg.data.load_size:.1f}x larger than "
            f"in training. Evaluating at their own size (the published protocol); pass --size {cfg.data.load_size} "
            "to evaluate at the training scale")
