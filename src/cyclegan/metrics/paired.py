"""Scores for data sets with ground truth (e.g. facades, cityscapes in pix2pix format).

photo -> labels: map each output pixel to the nearest label colour and score the class maps
against the true ones with the FCN-score statistics of the CycleGAN/pix2pix papers
(per-pixel accuracy, per-class accuracy, class IoU from one confusion matrix accumulated over
the whole test set). labels -> photo: RMSE and the share of pixels within a small threshold.

Label palettes. The label maps ship as JPEG, so a label colour arrives as a cloud of nearby
colours, and edges between two labels blend them (chroma subsampling). `learn_palette`
therefore (1) keeps only pixels in flat 3x3 neighbourhoods (per-channel range <= flat_tolerance),
which drops the edge blends; (2) histograms them on an 8-level-per-channel grid; (3) picks
histogram peaks greedily, most frequent first, skipping any within `merge_distance` of a peak
already taken, until peaks hold less than `min_share` of the pixels or `max_colors` are found;
(4) moves each peak to the mean colour of the grid cells nearest to it (within merge_distance / 2).
No class count is needed: on the 400 facades training label maps it finds exactly the 12 CMP
classes. Colours are returned sorted (lexicographic RGB), so the class index of a colour does
not depend on which images the palette was learnt from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ..data.images import load_image

PHOTO_SIZE = 256


def _as_rgb_array(item) -> np.ndarray:
    """path / PIL image / uint8 array (H, W, 3) / tensor (3, H, W) in [-1, 1] or uint8 -> uint8 (H, W, 3)."""
    if isinstance(item, (str, Path)):
        item = load_image(item, 3)
    if isinstance(item, Image.Image):
        return np.asarray(item.convert("RGB"), dtype=np.uint8)
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu()
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ValueError(f"image tensors must be (C, H, W) with C = 1 or 3, got shape {tuple(t.shape)}")
        if t.is_floating_point():
            t = ((t.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        arr = t.permute(1, 2, 0).numpy()
        return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr
    arr = np.asarray(item)
    if arr.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"image arrays must be (H, W, 3), got shape {arr.shape}")
    return arr[:, :, :3]


def _flat_pixels(arr: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood varies by at most `tolerance` in every channel, as (K, 3)."""
    a = arr.astype(np.int16)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return a.reshape(-1, 3)
    padded = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    # separable 3x3 max/min: over the three columns, then the three rows
    col_max = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    col_min = np.minimum(np.minimum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    hi = np.maximum(np.maximum(col_max[:h], col_max[1:h + 1]), col_max[2:])
    lo = np.minimum(np.minimum(col_min[:h], col_min[1:h + 1]), col_min[2:])
    spread = (hi - lo).max(axis=2)
    return a[spread <= tolerance]


def learn_palette(label_images: Iterable, max_colors: int = 32, min_share: float = 5e-4, merge_distance: float = 40.0,
                  flat_tolerance: int = 24) -> np.ndarray:
    """The distinct label colours of noisy (JPEG) label maps, as uint8 (K, 3); see the module docstring.

    label_images: paths, PIL images or uint8 (H, W, 3) arrays of label maps only (for pix2pix files,
    crop the label half first, e.g. with cyclegan.data.datasets.split_aligned).
    """
    bins = 32  # 8 levels per grid cell and channel
    counts = np.zeros(bins ** 3, dtype=np.int64)
    sums = np.zeros((bins ** 3, 3), dtype=np.float64)
    n_images = 0
    for item in label_images:
        arr = _as_rgb_array(item)
        px = _flat_pixels(arr, flat_tolerance)
        if len(px) == 0:
            px = arr.reshape(-1, 3).astype(np.int16)
        q = px >> 3
        idx = (q[:, 0].astype(np.int64) * bins + q[:, 1]) * bins + q[:, 2]
        counts += np.bincount(idx, minlength=bins ** 3)
        for c in range(3):
            sums[:, c] += np.bincount(idx, weights=px[:, c], minlength=bins ** 3)
        n_images += 1
    if n_images == 0 or counts.sum() == 0:
        raise ValueError("learn_palette: no label images given")
    total = counts.sum()
    occupied = np.flatnonzero(counts)
    means = sums[occupied] / counts[occupied, None]
    weights = counts[occupied]
    peaks: list[np.ndarray] = []
    for j in np.argsort(-weights, kind="stable"):
        if weights[j] < min_share * total or len(peaks) >= max_colors:
            break
        if all(np.linalg.norm(means[j] - p) >= merge_distance for p in peaks):
            peaks.append(means[j])
    palette = np.array(peaks)
    # refine: each colour becomes the weighted mean of the occupied cells closest to it and near it
    dist = np.linalg.norm(means[:, None, :] - palette[None], axis=2)
    nearest = dist.argmin(axis=1)
    near = dist[np.arange(len(means)), nearest] <= merge_distance / 2
    for k in range(len(palette)):
        sel = near & (nearest == k)
        if sel.any():
            palette[k] = (means[sel] * weights[sel, None]).sum(0) / weights[sel].sum()
    palette = np.clip(np.round(palette), 0, 255).astype(np.uint8)
    order = np.lexsort((palette[:, 2], palette[:, 1], palette[:, 0]))
    return palette[order]


def nearest_label(img_array, palette: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    """Colour image (H, W, 3) or stack (N, H, W, 3) -> int64 class index map of the nearest palette
    colour (Euclidean in RGB). Paths, PIL images and tensors are accepted like elsewhere."""
    arr = np.asarray(img_array) if isinstance(img_array, np.ndarray) and img_array.ndim == 4 else _as_rgb_array(img_array)
    pal = np.asarray(palette, dtype=np.float32)
    if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) == 0:
        raise ValueError(f"palette must be (K, 3) with K >= 1, got shape {pal.shape}")
    flat = arr.reshape(-1, 3).astype(np.float32)
    out = np.empty(len(flat), dtype=np.int64)
    pal_sq = (pal ** 2).sum(1)
    for start in range(0, len(flat), chunk):
        block = flat[start:start + chunk]
        # |x - p|^2 = |x|^2 - 2 x.p + |p|^2; |x|^2 is the same for every p
        out[start:start + chunk] = (pal_sq[None] - 2.0 * block @ pal.T).argmin(axis=1)
    return out.reshape(arr.shape[:-1])


def _check_counts(what: str, a: Sequence, b: Sequence, names: tuple[str, str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} {names[0]} but {len(b)} {names[1]}; they must pair up one to one")
    if len(a) == 0:
        raise ValueError(f"{what}: no images given")


def confusion_matrix(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts, rows = true class, columns = predicted class, summed over
    all image pairs. True labels outside 0..n_classes-1 (e.g. 255 = void) are ignored, as in FCN."""
    if isinstance(pred_maps, np.ndarray) and pred_maps.ndim == 2:
        pred_maps, true_maps = [pred_maps], [true_maps]
    _check_counts("segmentation_scores", pred_maps, true_maps, ("predicted maps", "true maps"))
    hist = np.zeros(n_classes * n_classes, dtype=np.int64)
    for i, (pred, true) in enumerate(zip(pred_maps, true_maps)):
        pred, true = np.asarray(pred), np.asarray(true)
        if pred.shape != true.shape:
            raise ValueError(f"segmentation_scores: pair {i} has predicted map {pred.shape} but true map {true.shape}")
        valid = (true >= 0) & (true < n_classes)
        p, t = pred[valid].astype(np.int64), true[valid].astype(np.int64)
        if p.size and (p.min() < 0 or p.max() >= n_classes):
            raise ValueError(f"segmentation_scores: pair {i} predicts class {p.max() if p.max() >= n_classes else p.min()}"
                             f", outside 0..{n_classes - 1}")
        hist += np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return hist.reshape(n_classes, n_classes)


def scores_from_confusion(hist: np.ndarray) -> dict:
    """FCN-score statistics of a confusion matrix (rows true, columns predicted).

    per_pixel_acc = trace / total; per_class_acc = mean over classes present in the ground truth of
    diag / row sum; class_iou = mean over the same classes of diag / (row + column - diag). A class that
    is predicted but absent from the ground truth does not enter the means (its false positives still
    lower the IoU of the true classes they were taken from).
    """
    hist = np.asarray(hist, dtype=np.float64)
    diag, rows, cols = np.diag(hist), hist.sum(1), hist.sum(0)
    present = rows > 0
    if not present.any():
        raise ValueError("segmentation_scores: the ground truth holds no labelled pixels")
    return {
        "per_pixel_acc": float(diag.sum() / hist.sum()),
        "per_class_acc": float(np.mean(diag[present] / rows[present])),
        "class_iou": float(np.mean(diag[present] / (rows + cols - diag)[present])),
    }


def segmentation_scores(pred_maps: Sequence[np.ndarray], true_maps: Sequence[np.ndarray], n_classes: int) -> dict:
    """per_pixel_acc, per_class_acc and class_iou over a whole set of class index maps (one confusion
    matrix accumulated over all pairs, as the FCN-score code of pix2pix/CycleGAN does)."""
    return scores_from_confusion(confusion_matrix(pred_maps, true_maps, n_classes))


def _at_size(arr: np.ndarray, size: int) -> np.ndarray:
    if arr.shape[:2] == (size, size):
        return arr
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.BICUBIC))


def photo_scores(fake: Sequence, real: Sequence, threshold: float = 5, size: int = PHOTO_SIZE) -> dict:
    """labels -> photo quality against the true photos, both resized to size x size (bicubic).

    rmse: per-image root mean squared error in 0..255 units, averaged over images.
    within_threshold: share of all pixels whose largest absolute channel difference is below
    `threshold` (in 0..255 units, i.e. threshold/255 of the range).
    Items: paths, PIL images, uint8 (H, W, 3) arrays, or tensors (3, H, W) in [-1, 1] / uint8.
    """
    fake, real = list(fake), list(real)
    _check_counts("photo_scores", fake, real, ("fake images", "real images"))
    rmses, within, pixels = [], 0, 0
    for f, r in zip(fake, real):
        a = _at_size(_as_rgb_array(f), size).astype(np.float64)
        b = _at_size(_as_rgb_array(r), size).astype(np.float64)
        diff = np.abs(a - b)
        rmses.append(np.sqrt(np.mean(diff ** 2)))
        within += int((diff.max(axis=2) < threshold).sum())
        pixels += diff.shape[0] * diff.shape[1]
    return {"rmse": float(np.mean(rmses)), "within_threshold": within / pixels}


def cycle_error(x, reconstructed) -> float:
    """Mean absolute difference between images and their reconstructions G_B(G_A(x)), in the
    networks' [-1, 1] units. Tensors (N, C, H, W) / (C, H, W), or equal-length sequences of them."""
    if isinstance(x, (list, tuple)) or isinstance(reconstructed, (list, tuple)):
        xs, rs = list(x), list(reconstructed)
        _check_counts("cycle_error", xs, rs, ("inputs", "reconstructions"))
        total, count = 0.0, 0
        for i, (a, b) in enumerate(zip(xs, rs)):
            a, b = torch.as_tensor(a), torch.as_tensor(b)
            if a.shape != b.shape:
                raise ValueError(f"cycle_error: pair {i} has input {tuple(a.shape)} but reconstruction {tuple(b.shape)}")
            total += float((a.double() - b.double()).abs().sum())
            count += a.numel()
        if count == 0:
            raise ValueError("cycle_error: the images are empty")
        return total / count
    a, b = torch.as_tensor(x), torch.as_tensor(reconstructed)
    if a.shape != b.shape:
        what = (f"{a.shape[0]} inputs but {b.shape[0]} reconstructions" if a.ndim == 4 and b.ndim == 4
                and a.shape[0] != b.shape[0] else f"input {tuple(a.shape)} but reconstruction {tuple(b.shape)}")
        raise ValueError(f"cycle_error: {what}")
    if a.numel() == 0:
        raise ValueError("cycle_error: no images given")
    return float((a.double() - b.double()).abs().mean())
