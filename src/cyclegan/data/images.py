"""Reading image files into well-formed RGB or grayscale PIL images, and back to tensors.

Pillow's plain `convert` is silently wrong for several real inputs (16-bit PNGs clip to
white, transparent pixels keep whatever colour hides under them, EXIF rotation is
ignored); each case is handled here, and every failure names the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_BAD_IMAGE_HINT = "re-export or remove it, or pass --on-bad-image skip"


class ImageLoadError(Exception):
    """An image file cannot be read; the message names the file and the fix."""


class DatasetError(Exception):
    """A dataset folder is missing, empty or laid out wrongly."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, max_count: int | None = None) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"folder {folder} does not exist; expected a layout like ROOT/trainA and ROOT/trainB "
                           "(or ROOT/train for --dataset-mode aligned)")
    files = sorted(p for p in folder.iterdir() if is_image_file(p) and p.is_file())
    if not files:
        raise DatasetError(f"folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); add some or fix the path")
    return files[:max_count] if max_count is not None else files


def list_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files and folders given on a command line -> image files, in the order given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += list_images(path)
        elif path.is_file():
            found.append(path)
        else:
            raise DatasetError(f"input {path} does not exist")
    if not found:
        raise DatasetError("no input images given")
    return found


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float grayscale -> 8-bit 'L', scaled rather than clipped."""
    arr = np.asarray(img)
    if img.mode == "F":
        scale = 255.0 if arr.size and np.nanmax(arr) <= 1.0 else 1.0
        arr = np.nan_to_num(arr.astype(np.float64) * scale)
    else:
        arr = arr.astype(np.float64)
        # 16-bit files are the common case; 'I' holding only 8-bit values stays as is
        if arr.size and arr.max() > 255:
            arr = arr / 257.0
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images onto white, as viewers display them."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def load_image(path: str | Path, channels: int) -> Image.Image:
    """Decode `path` fully and return it as mode 'RGB' (channels 3) or 'L' (channels 1)."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now so truncated data fails here, not later
            img = ImageOps.exif_transpose(opened)
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
                img = _to_8bit(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                img = _flatten_alpha(img)
            elif img.mode == "RGBa":
                img = img.convert("RGBA").convert("RGB")
            img = img.convert("RGB" if channels == 3 else "L")
    except Image.DecompressionBombError as err:
        raise ImageLoadError(f"cannot read image {path}: too large ({err}); downscale it first") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, UnidentifiedImageError):
            reason = "not an image file Pillow can identify"
        raise ImageLoadError(f"cannot read image {path}: {reason} ({_BAD_IMAGE_HINT})") from None
    return img


def check_image_header(path: Path) -> str | None:
    """Cheap check (header only) used when a dataset is opened; returns the problem or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.size  # noqa: B018 - header parsed
    except Image.DecompressionBombError:
        return "too large (decompression-bomb limit); downscale it first"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        if isinstance(err, UnidentifiedImageError):
            return "not an image file Pillow can identify"
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL 'RGB'/'L' -> float32 (C, H, W) in [-1, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """(C, H, W) in [-1, 1], C = 1 or 3 -> PIL 'L'/'RGB'."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0], mode="L") if arr.shape[2] == 1 else Image.fromarray(arr, mode="RGB")
