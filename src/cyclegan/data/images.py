"""Reading image files into well-formed RGB or grayscale PIL images, and back to tensors.

Pillow's plain `convert` is silently wrong for several real inputs (16-bit PNGs clip to
white, transparent pixels keep whatever colour hides under them, EXIF rotation is
ignored); each case is handled here, and every failure names the file.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import smoke

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BAD_IMAGE_HINT = "re-export or remove it, or pass --on-bad-image skip"

# Errors Pillow raises for unreadable, truncated or hostile files. struct.error comes from
# malformed EXIF/TIFF tags, EOFError from some truncated formats.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageLoadError(Exception):
    """An image file cannot be read; the message names the file and the fix."""


class DatasetError(Exception):
    """A dataset folder is missing, empty or laid out wrongly."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _listable(path: Path) -> bool:
    # Symlinks to files are followed. Broken symlinks stay in the list so that the dataset's
    # header check names them instead of the image silently vanishing.
    return path.is_file() or (path.is_symlink() and not path.exists())


def list_images(folder: str | Path, max_count: int | None = None) -> list[Path]:
    """Image files directly inside `folder`, sorted by name, at most `max_count` of them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"folder {folder} does not exist; expected layout ROOT/trainA, ROOT/trainB "
                           "(or ROOT/train with --dataset-mode aligned)")
    files = sorted(p for p in folder.iterdir() if is_image_file(p) and _listable(p))
    if not files:
        raise DatasetError(f"folder {folder} holds no images ({' '.join(IMAGE_EXTENSIONS)}); "
                           "add some or fix the path")
    cap = smoke.image_cap()  # CYCLEGAN_SMOKE: the first few images only
    if cap is not None:
        max_count = cap if max_count is None else min(max_count, cap)
    return files[:max_count] if max_count is not None else files


def list_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files and folders given on a command line -> image files, in the order given.

    A file named explicitly is taken whatever its extension (Pillow reads by content).
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += list_images(path)
        elif path.is_file():
            found.append(path)
        else:
            raise DatasetError(f"input {path} does not exist; check the path")
    if not found:
        raise DatasetError("no input images given; pass image files or folders holding images")
    return found


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float grayscale -> 8-bit 'L', scaled rather than clipped."""
    arr = np.asarray(img).astype(np.float64)
    top = float(np.nanmax(arr)) if arr.size and not np.isnan(arr).all() else 0.0
    if img.mode in _SIXTEEN_BIT:
        arr = arr / 257.0  # 65535 -> 255 exactly; always, even for a dark 16-bit image
    elif img.mode == "I":
        # 'I' is also what some 8-bit files decode to; only values above 255 mean 16 bit.
        arr = arr / 257.0 if top > 255 else arr
    else:  # 'F': guess the range from the data, as no header says it
        if top <= 1.0:
            arr = arr * 255.0  # the usual [0, 1] float image
        elif top > 255.0:
            arr = arr / 257.0 if top <= 65535.0 else arr * (255.0 / top)
    arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))  # 2-D uint8 -> "L"


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent images onto white, as viewers display them."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _normalise(img: Image.Image, channels: int) -> Image.Image:
    """Any decoded mode -> 'RGB' (channels 3) or 'L' (channels 1)."""
    if img.mode in _SIXTEEN_BIT or img.mode in ("I", "F"):
        img = _to_8bit(img)
    if img.mode in ("La", "RGBa"):
        img = img.convert("LA" if img.mode == "La" else "RGBA")  # un-premultiply before compositing
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        img = _flatten_alpha(img)
    # Remaining modes (1, L, P, CMYK, YCbCr, LAB, HSV, RGBX) convert correctly; L -> RGB replicates.
    return img.convert("RGB" if channels == 3 else "L")


def load_image(path: str | Path, channels: int) -> Image.Image:
    """Decode `path` fully and return it as mode 'RGB' (channels 3) or 'L' (channels 1)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now so truncated data fails here, not in a later resize
            img = _normalise(ImageOps.exif_transpose(opened), channels)
    except Image.DecompressionBombError as err:
        # Pillow's limit stays in force: a huge file is far more often an attack or a mistake.
        raise ImageLoadError(f"cannot read image {path}: too large ({err}); downscale it, "
                             "or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it") from None
    except _DECODE_ERRORS as err:
        raise ImageLoadError(f"cannot read image {path}: {_reason(err)} ({BAD_IMAGE_HINT})") from None
    return img


def _reason(err: BaseException) -> str:
    if isinstance(err, UnidentifiedImageError):
        return "not an image file Pillow can identify"
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_image_header(path: Path) -> str | None:
    """Cheap check (header only, no pixel decoding) used when a dataset is opened.

    Returns the problem as a short phrase, or None for a file that looks fine.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "possibly corrupt EXIF": the full load decides
            with Image.open(path) as img:
                if img.width < 1 or img.height < 1:
                    return f"empty image ({img.width}x{img.height} pixels)"
    except Image.DecompressionBombError as err:
        return f"too large ({err})"
    except _DECODE_ERRORS as err:
        return _reason(err)
    return None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL 'RGB'/'L' -> float32 (C, H, W) in [-1, 1], as ToTensor + Normalize(0.5, 0.5)."""
    if img.mode not in ("RGB", "L"):
        raise ValueError(f"to_tensor expects an 'RGB' or 'L' image, got mode {img.mode!r}; use load_image")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """(C, H, W) in [-1, 1], C = 1 or 3 -> PIL 'L'/'RGB' (clamped, rounded)."""
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"to_pil expects a (1 or 3, H, W) tensor, got shape {tuple(t.shape)}")
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)  # uint8 2-D -> "L", HxWx3 -> "RGB"
