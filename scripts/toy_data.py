"""Procedural and derived data sets for the student report's extra experiments (SPEC, report 001).

Two builders write the standard unaligned layout (ROOT/trainA, trainB, testA, testB), so the
ordinary `cyclegan.train` reads them with no special code:

* `make_shapes_dataset`: binary images of circles (A) and squares (B) of random size and
  position, to test whether CycleGAN can change geometry (report section 3.2).
* `make_colour_grey_dataset`: colour photos (A) and grey photos (B) made from *other* photos
  with PIL's convert("L") (report section 3.3). Because the grey version of any photo is known,
  the translations can be scored against the truth; so the builder also keeps the colour
  original of every grey image in ROOT/trainB_original and ROOT/testB_original (folders the
  training loader never reads).

Both are deterministic given the seed: the same arguments give byte-identical PNG files.
The shape descriptors (`shape_stats`) live here too, next to the generator they describe, so
that the tests can check that they tell the two generated shapes apart.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cyclegan.data.images import list_images, load_image

MANIFEST = "manifest.json"

# Below this mean channel spread (0-255) a photo is treated as already grey: it cannot serve as
# a colour image, and its "colour original" would teach nothing (horse2zebra holds a few such).
GREY_CHROMA_THRESHOLD = 4.0


def _fresh_dir(path: Path) -> Path:
    """An empty folder: stale files from an earlier build with other arguments must not mix in."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _shape_image(kind: str, size: int, extent: int, x0: int, y0: int) -> Image.Image:
    """A white `kind` ("circle" or "square") of `extent` px across, top-left at (x0, y0), on black."""
    img = Image.new("L", (size, size), 0)
    box = (x0, y0, x0 + extent - 1, y0 + extent - 1)
    draw = ImageDraw.Draw(img)
    # ImageDraw never anti-aliases, so the image holds only 0 and 255.
    if kind == "circle":
        draw.ellipse(box, fill=255)
    else:
        draw.rectangle(box, fill=255)
    return img


def _draw_shapes(kind: str, count: int, size: int, extents: tuple[int, int], rng: np.random.Generator,
                 exclude: set[bytes]) -> list[Image.Image]:
    """`count` distinct images of `kind`, none equal to an image in `exclude` (which grows)."""
    images: list[Image.Image] = []
    lo, hi = extents
    attempts = 0
    while len(images) < count:
        attempts += 1
        if attempts > 100 * count + 1000:
            raise ValueError(f"cannot draw {count} distinct {kind}s of {lo}-{hi} px in {size} px images; "
                             "lower the count or widen the size range")
        extent = int(rng.integers(lo, hi + 1))
        # A one-pixel margin keeps every shape whole, so its bounding box is its true extent.
        x0, y0 = (int(v) for v in rng.integers(1, size - extent, size=2))
        img = _shape_image(kind, size, extent, x0, y0)
        key = img.tobytes()
        if key in exclude:
            continue
        exclude.add(key)
        images.append(img)
    return images


def make_shapes_dataset(root: str | Path, n_train: int = 1000, n_test: int = 100, size: int = 32, seed: int = 0,
                        min_extent: float = 0.2, max_extent: float = 0.85) -> Path:
    """Write circles (A) and squares (B) as binary PNGs under `root`; return `root`.

    Each image holds one white shape on black whose diameter / side is drawn uniformly between
    `min_extent` and `max_extent` of the image size, at a uniform position. Both domains share
    the size distribution, so a translation need not change the scale. No test image equals a
    training image: on a 32 px grid the number of distinct shapes is small, and a test set that
    repeats training images could not show the overfitting the report describes.
    """
    root = Path(root)
    lo, hi = max(2, round(min_extent * size)), min(size - 2, round(max_extent * size))
    if not 2 <= lo <= hi:
        raise ValueError(f"no valid shape size between {min_extent} and {max_extent} of {size} px")
    rng = np.random.default_rng(seed)
    counts = {"train": n_train, "test": n_test}
    for domain, kind in (("A", "circle"), ("B", "square")):
        seen: set[bytes] = set()
        for phase in ("train", "test"):  # train first, so test images are drawn to avoid it
            out = _fresh_dir(root / f"{phase}{domain}")
            for i, img in enumerate(_draw_shapes(kind, counts[phase], size, (lo, hi), rng, seen)):
                img.save(out / f"{kind}_{i:05d}.png")
    manifest = {"kind": "shapes", "A": "circle", "B": "square", "n_train": n_train, "n_test": n_test,
                "size": size, "seed": seed, "extent_px": [lo, hi]}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return root


def chroma(img: Image.Image) -> float:
    """Mean over pixels of max(R, G, B) - min(R, G, B): 0 for a grey image."""
    arr = np.asarray(img.convert("RGB"), dtype=np.int16)
    return float((arr.max(axis=2) - arr.min(axis=2)).mean())


def _colour_photos(folders: list[Path], size: int) -> list[tuple[Path, Image.Image]]:
    """(path, photo resized to size x size) of every colour photo in `folders`, sorted by path."""
    photos = []
    for path in sorted(p for folder in folders for p in list_images(folder)):
        img = load_image(path, 3).resize((size, size), Image.Resampling.LANCZOS)
        if chroma(img) >= GREY_CHROMA_THRESHOLD:
            photos.append((path, img))
    return photos


def make_colour_grey_dataset(source_root: str | Path, out_root: str | Path, n: int = 500, n_test: int = 100,
                             size: int = 72, seed: int = 0) -> Path:
    """Write colour photos (A) and grey photos of other scenes (B) under `out_root`; return it.

    Photos come from source_root/trainA + trainB (training) and testA + testB (test), e.g.
    horse2zebra; photos that are already grey are left out. Each is resized to size x size first
    and only then made grey with PIL's convert("L") (ITU-R 601 luma), so the grey image is exactly
    the grey of the colour original saved in {train,test}B_original under the same name. The two
    domains never share a photo: the training is unpaired, as in the report.
    """
    source_root, out_root = Path(source_root), Path(out_root)
    rng = np.random.default_rng(seed)
    wanted = {"train": n, "test": n_test}
    chosen: dict[str, list[str]] = {}
    for phase in ("train", "test"):
        photos = _colour_photos([source_root / f"{phase}A", source_root / f"{phase}B"], size)
        if len(photos) < 2 * wanted[phase]:
            raise ValueError(f"{source_root}: {len(photos)} colour {phase} photos, need {2 * wanted[phase]} "
                             f"({wanted[phase]} per domain)")
        order = rng.permutation(len(photos))
        colour = [photos[i] for i in order[: wanted[phase]]]
        grey = [photos[i] for i in order[wanted[phase]: 2 * wanted[phase]]]
        dir_a = _fresh_dir(out_root / f"{phase}A")
        dir_b = _fresh_dir(out_root / f"{phase}B")
        dir_orig = _fresh_dir(out_root / f"{phase}B_original")
        for path, img in colour:
            img.save(dir_a / f"{path.stem}.png")
        for path, img in grey:
            img.convert("L").save(dir_b / f"{path.stem}.png")
            img.save(dir_orig / f"{path.stem}.png")
        chosen[phase] = [p.name for p, _ in colour] + [p.name for p, _ in grey]
    manifest = {"kind": "colour_grey", "A": "colour", "B": "grey (PIL convert('L'))", "source": str(source_root),
                "n": n, "n_test": n_test, "size": size, "seed": seed}
    (out_root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_root


# ---------------------------------------------------------------- measuring shapes


def foreground(image: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Boolean mask of the white pixels of a 0-255 image (H, W) or (H, W, C), channels averaged."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    return arr >= threshold


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def shape_stats(image: np.ndarray, threshold: int = 128) -> dict[str, float]:
    """Descriptors of the (single) white shape in a 0-255 image.

    area: foreground pixels / image pixels (0: a black image).
    fill: foreground pixels / pixels of the foreground's bounding box: 1.0 for an axis-aligned
        square, pi/4 ~ 0.785 for a circle (a little more for small, pixelated ones), 0 when empty.
    circle_iou: IoU of the foreground with the ellipse inscribed in that bounding box; with
        fill (which equals the IoU with the box itself) it says which ideal shape fits better.
    extent: the larger side of the bounding box / image side.
    """
    mask = foreground(image, threshold)
    box = _bbox(mask)
    if box is None:
        return {"area": 0.0, "fill": 0.0, "circle_iou": 0.0, "extent": 0.0}
    r0, r1, c0, c1 = box
    inside = mask[r0:r1, c0:c1]
    h, w = inside.shape
    # The ideal circle rasterised exactly as the data set draws it, so a real circle scores 1.0
    # at every size (an analytic disc misses Pillow's pixel rounding on small shapes).
    ideal = Image.new("1", (w, h), 0)
    ImageDraw.Draw(ideal).ellipse((0, 0, w - 1, h - 1), fill=1)
    ellipse = np.asarray(ideal, dtype=bool)
    union = np.logical_or(inside, ellipse).sum()  # the box holds every foreground pixel
    return {
        "area": float(mask.mean()),
        "fill": float(inside.sum() / inside.size),
        "circle_iou": float(np.logical_and(inside, ellipse).sum() / union),
        "extent": float(max(h, w) / max(mask.shape)),
    }


def classify_shape(stats: dict[str, float], min_area: float = 0.005, min_iou: float = 0.85) -> str:
    """'empty', 'square', 'circle' or 'other' (a blob that fits neither ideal shape well).

    A credible square matches its bounding box (fill = IoU with the box >= min_iou), a credible
    circle its inscribed ellipse; fewer than min_area of the pixels white reads as a black image.
    """
    if stats["area"] < min_area:
        return "empty"
    square_iou, circle_iou = stats["fill"], stats["circle_iou"]
    if max(square_iou, circle_iou) < min_iou:
        return "other"
    return "square" if square_iou >= circle_iou else "circle"
