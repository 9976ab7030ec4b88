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
from PIL import Image

from .config import ConfigError
from .data.datasets import split_aligned
from .data.demo import demo_root
from .data.formats import domain_format
from .data.images import DatasetError, list_images, load_image, to_pil, to_tensor
from .metrics import (
    cycle_error,
    fid_kid,
    learn_palette,
    nearest_label,
    photo_scores,
    segmentation_scores,
)
from .rundir import RunDir
from .detectors import detect, findings_dict
from .metrics.protocols import DEFAULT_PROTOCOL, folder_scores, get_protocol
from .metrics.label_check import SAMPLE, look_like_label_maps
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


def _resized_copies(files: list[Path], folder: Path, size: int, channels: int) -> list[Path]:
    """Square `size` x `size` PNG copies of `files` in `folder` (emptied first)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    out = []
    for i, path in enumerate(files):
        target = folder / f"{i:04d}_{path.stem}.png"
        load_image(path, channels).resize((size, size), Image.BICUBIC).save(target)
        out.append(target)
    return out


def _same_size_runs(tensors: list[torch.Tensor], limit: int) -> list[tuple[int, int]]:
    """(start, stop) index ranges of consecutive equally sized tensors, at most `limit` long."""
    runs, start = [], 0
    for i in range(1, len(tensors) + 1):
        if i == len(tensors) or i - start == limit or tensors[i].shape != tensors[start].shape:
            runs.append((start, i))
            start = i
    return runs


def evaluate_run(
    run_dir: str | Path,
    dataroot: str | Path | None = None,
    phase: str = "test",
    device: str = "auto",
    batch_size: int = 50,
    cache_dir: Path | None = None,
    fid_method: str = "sqrtm",
    progress: bool = True,
    labels: str | None = None,
    size: int | None = None,
    protocol: str = "ours",
) -> dict[str, dict]:
    """Metrics of a trained run in both directions: {"AtoB": {...}, "BtoA": {...}}.

    Unaligned data: FID/KID of translated PHASE A vs real PHASE B (and the reverse) and the cycle
    error. Aligned data: the paired metrics of `evaluate_aligned_run` (`labels` names the
    label-map domain). Translations are written to RUN_DIR/eval/<direction>/ (kept for inspection).
    `size`: translate and compare at `size` x `size` (both the inputs and the real images resized);
    a run trained at reduced resolution should be measured at its --load-size, where objects have
    the scale its generators learned. None keeps the images' own size.
    `protocol`: a name of cyclegan.metrics.protocols.PROTOCOLS (which translations count, against
    which real images, resized how); recorded in each direction's scores. Unaligned runs also get
    the failure detectors of cyclegan.detectors under "detectors".
    """
    chosen = get_protocol(protocol)
    if protocol != DEFAULT_PROTOCOL and (size is not None or phase != "test"):
        raise ConfigError(f"--protocol {protocol} fixes the images and their size; drop --size/--phase "
                          "(they belong to the default protocol, ours)")
    if size is not None and size < 8:
        raise ValueError(f"evaluation size must be at least 8 pixels, got {size}")
    run = RunDir(run_dir)
    cfg = run.read_config()
    if cfg.data.dataset_mode == "aligned":
        if protocol != DEFAULT_PROTOCOL:
            raise ConfigError(f"--protocol {protocol} is an unpaired protocol; aligned runs get the paired metrics")
        return evaluate_aligned_run(run_dir, dataroot, phase, labels, device, batch_size, fid_method, progress, size)
    root = Path(dataroot) if dataroot else (Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root())
    folders = {"A": root / f"{phase}A", "B": root / f"{phase}B"}
    if cfg.data.direction == "BtoA":
        folders = {"A": folders["B"], "B": folders["A"]}
    channels = {"A": cfg.model.input_nc, "B": cfg.model.output_nc}
    if any(not domain_format(cfg, d).classic for d in "AB"):
        raise ConfigError(f"{run_dir} was trained on 16-bit, float or N-channel images; the run form of evaluate "
                          "reads 8-bit images: translate with `cyclegan translate` and compare the files yourself")
    results: dict[str, dict] = {}
    for direction, source, target in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
        files = list_images(folders[source])
        real_dir = folders[target]
        real_files = list_images(real_dir)  # fail before translating anything when it is missing
        if size is not None:
            files = _resized_copies(files, run.eval_dir / f"input_{source}_{size}", size, channels[source])
            real_dir = run.eval_dir / f"real_{target}_{size}"
            _resized_copies(real_files, real_dir, size, channels[target])
        translator = Translator.from_run(run_dir, direction, device, with_inverse=True)
        out_dir = run.eval_dir / direction
        if out_dir.exists():
            for old in out_dir.glob("*.png"):
                old.unlink()
        translator.translate_files(files, out_dir, progress=progress)
        if protocol == DEFAULT_PROTOCOL:
            scores = fid_kid(out_dir, real_dir, cache_dir=cache_dir if size is None else None, batch_size=batch_size,
                             device=device, progress=progress, fid_method=fid_method)
            scores["protocol"] = protocol
        else:
            # the protocol's real folders are named by the dataset's own domain letters
            letter = target if cfg.data.direction == "AtoB" else {"A": "B", "B": "A"}[target]
            scores = folder_scores(out_dir, root, chosen, letter, cache_dir=cache_dir, batch_size=batch_size,
                                   device=device, fid_method=fid_method)
        with torch.no_grad():
            scores["cycle_l1"] = _cycle_error_on(translator, files, channels[source])
        outputs = list_images(out_dir)
        if len(outputs) == len(files) >= 2:
            scores["detectors"] = findings_dict(detect(files, outputs, list_images(real_dir)))
        scores["fake_dir"], scores["real_dir"] = str(out_dir), str(real_dir)
        results[direction] = scores
    return results


def evaluate_aligned_run(
    run_dir: str | Path,
    dataroot: str | Path | None = None,
    phase: str = "test",
    labels: str | None = None,
    device: str = "auto",
    batch_size: int = 50,
    fid_method: str = "sqrtm",
    progress: bool = True,
    size: int | None = None,
) -> dict[str, dict]:
    """Paired metrics of a run trained on an aligned dataset (A|B images, e.g. facades), both directions.

    Each test image's A half is translated and compared with its own B half, and the reverse.
    The domain named by `labels` ("A" or "B") holds label maps: outputs into it are scored, as
    the paper's Tables 2-5, by per-pixel accuracy, per-class accuracy and class IoU after mapping
    every pixel to the nearest colour of the palette learned from the training label maps.
    Outputs into a photo domain get RMSE, the share of pixels within 5/255, and FID/KID.
    `size` resizes both halves to `size` x `size` first (label maps by nearest neighbour, so no
    colour outside the palette appears), as `evaluate_run` explains.
    """
    run = RunDir(run_dir)
    cfg = run.read_config()
    root = Path(dataroot) if dataroot else Path(cfg.data.dataroot or "")
    if labels not in (None, "A", "B"):
        raise ValueError(f"labels must be A, B or None, got {labels!r}")

    def halves(path: Path) -> dict[str, object]:
        left, right = split_aligned(path)
        return {"A": right, "B": left} if cfg.data.direction == "BtoA" else {"A": left, "B": right}

    def at_size(pair: dict[str, Image.Image]) -> dict[str, Image.Image]:
        if size is None:
            return pair
        return {d: img.resize((size, size), Image.NEAREST if d == labels else Image.BICUBIC) for d, img in pair.items()}

    pairs = [at_size(halves(p)) for p in list_images(root / phase)]
    channels = {"A": cfg.model.input_nc, "B": cfg.model.output_nc}
    palette = None
    if labels is not None:  # before any translation: a wrong side fails at once
        train_files = list_images(root / cfg.data.phase)
        palette = learn_palette([halves(p)[labels] for p in train_files])
        check_label_side(run_dir, cfg.data.direction, labels, palette, halves, train_files)
    results: dict[str, dict] = {}
    for direction, source, target in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
        translator = Translator.from_run(run_dir, direction, device, with_inverse=True)
        out_dir, real_dir = run.eval_dir / direction, run.eval_dir / f"real_{target}"
        for folder in (out_dir, real_dir):
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.png"):
                old.unlink()
        fakes, reals, originals, reconstructions = [], [], [], []
        mode = {1: "L", 3: "RGB"}
        inputs = [to_tensor(pair[source].convert(mode[channels[source]])) for pair in pairs]
        for start, stop in _same_size_runs(inputs, min(batch_size, 16)):
            fake, rec = translator.cycle(torch.stack(inputs[start:stop]))
            for j, i in enumerate(range(start, stop)):
                fake_img = to_pil(fake[j].cpu()).convert("RGB")
                real_img = pairs[i][target].convert("RGB")
                fake_img.save(out_dir / f"{i:04d}.png")
                real_img.save(real_dir / f"{i:04d}.png")
                fakes.append(fake_img)
                reals.append(real_img)
                originals.append(inputs[i])
                reconstructions.append(rec[j].cpu())
        scores: dict = {"n": len(pairs), "cycle_l1": cycle_error(originals, reconstructions)}
        if target == labels:
            scores.update(segmentation_scores([nearest_label(f, palette) for f in fakes],
                                              [nearest_label(r, palette) for r in reals], len(palette)))
            scores["n_classes"] = len(palette)
        else:
            scores.update(photo_scores(fakes, reals))
            scores.update(fid_kid(out_dir, real_dir, cache_dir=None, batch_size=batch_size, device=device,
                                  progress=progress, fid_method=fid_method))
        scores["fake_dir"] = str(out_dir)
        results[direction] = scores
    return results


def check_label_side(run_dir: Path, direction: str, labels: str, palette, halves, train_files: list[Path]) -> None:
    """Raise when the domain `labels` names does not hold label maps (e.g. the side chosen
    against the run's --direction), suggesting the other side when that one does."""
    sample = train_files[:SAMPLE]
    if look_like_label_maps([halves(p)[labels] for p in sample], palette):
        return
    other = "B" if labels == "A" else "A"
    other_images = [halves(p)[other] for p in sample]
    side = {"A": "left", "B": "right"} if direction == "AtoB" else {"A": "right", "B": "left"}
    advice = (f"with --direction {direction} the label maps are domain {other}: pass --labels {other}"
              if look_like_label_maps(other_images, learn_palette(other_images))
              else "neither domain holds label maps; drop --labels")
    raise DatasetError(f"--labels {labels}: domain {labels} of {run_dir} (the {side[labels]} halves) is not label maps "
                       f"(few pixels on any colour of the palette learned from it); {advice}")


def pair_by_name(fake_dir: str | Path, real_dir: str | Path) -> list[tuple[Path, Path]]:
    """The images of two folders matched by file name without extension (`x.png` with `x.jpg`)."""
    fakes, reals = list_images(fake_dir), list_images(real_dir)
    if len(fakes) != len(reals):
        raise DatasetError(f"paired metrics: {fake_dir} holds {len(fakes)} images but {real_dir} holds {len(reals)}; "
                           "each generated image needs the real image of the same name")
    by_stem = {p.stem: p for p in reals}
    if len(by_stem) != len(reals):
        raise DatasetError(f"paired metrics: {real_dir} holds two images with the same name and different "
                           "extensions; keep one of each")
    unmatched = [p.name for p in fakes if p.stem not in by_stem]
    if unmatched:
        raise DatasetError(f"paired metrics: {len(unmatched)} images of {fake_dir} have no namesake in {real_dir} "
                           f"(first: {unmatched[0]}); name each generated image after its ground truth")
    return [(p, by_stem[p.stem]) for p in fakes]


def paired_folder_scores(fake_dir: str | Path, real_dir: str | Path, labels_from: str | Path | None = None,
                         threshold: float = 5.0) -> dict:
    """Paired metrics of generated images against the real images of the same names.

    Photos (default): per-image RMSE and the share of pixels within `threshold` (0-255), both
    images resized to 256 (`photo_scores`). Label maps (`labels_from`: a folder of label maps,
    e.g. the training labels, to learn the palette from): per-pixel accuracy, per-class accuracy
    and class IoU after mapping every pixel to the nearest palette colour; a generated map must
    have its ground truth's size, since labels are compared pixel by pixel.
    """
    pairs = pair_by_name(fake_dir, real_dir)
    if labels_from is None:
        return {"n_pairs": len(pairs), **photo_scores([f for f, _ in pairs], [r for _, r in pairs], threshold)}
    label_files = list_images(labels_from)
    palette = learn_palette(load_image(p, 3) for p in label_files)
    if not look_like_label_maps([load_image(p, 3) for p in label_files[:SAMPLE]], palette):
        raise DatasetError(f"--labels-from {labels_from}: these images are not label maps (few pixels on any of the "
                           f"{len(palette)} colours learned from them); pass a folder of label maps, e.g. the "
                           "training labels")
    predicted, true = [], []
    for fake, real in pairs:
        fake_img, real_img = load_image(fake, 3), load_image(real, 3)
        if fake_img.size != real_img.size:
            raise DatasetError(f"paired metrics: {fake} is {fake_img.width}x{fake_img.height} but {real} is "
                               f"{real_img.width}x{real_img.height}; label maps are compared pixel by pixel, so "
                               "translate at the ground truth's size")
        predicted.append(nearest_label(fake_img, palette))
        true.append(nearest_label(real_img, palette))
    return {"n_pairs": len(pairs), **segmentation_scores(predicted, true, len(palette)), "n_classes": len(palette)}
