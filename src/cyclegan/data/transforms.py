"""Preprocessing as in the authors' code (resize, crop, flip), with Pillow only.

Random choices are drawn up front into `TransformParams` from an explicit
`random.Random`, so the same seed gives the same crop in any worker process, and
the two halves of a paired image can share one crop (as pix2pix does).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from ..config import DataConfig

_CROPPING = ("resize_and_crop", "crop", "scale_width_and_crop")


@dataclass(frozen=True)
class TransformParams:
    """Offsets of the crop's top-left corner in the resized image, and the flip."""

    crop_x: int
    crop_y: int
    flip: bool


def _round_to(value: int, base: int = 4) -> int:
    # The authors' __make_power_2: Python's round (half to even), never below one step.
    return max(base, int(round(value / base) * base))


def _crops(cfg: DataConfig) -> bool:
    return cfg.preprocess in _CROPPING


def resized_size(size: tuple[int, int], cfg: DataConfig) -> tuple[int, int]:
    """(w, h) of an image of `size` after the resize step of cfg.preprocess, before cropping."""
    w, h = size
    if cfg.preprocess == "resize_and_crop":
        w, h = cfg.load_size, cfg.load_size
    elif cfg.preprocess in ("scale_width", "scale_width_and_crop"):
        # The authors' __scale_width: the height never drops below the crop size.
        w, h = cfg.load_size, int(max(cfg.load_size * h / w, cfg.crop_size))
    elif cfg.preprocess == "none":
        w, h = _round_to(w), _round_to(h)
    if _crops(cfg) and (w < cfg.crop_size or h < cfg.crop_size):
        # Smaller than the crop (a tiny file, or load_size < crop_size): scale up, keeping the
        # aspect ratio, rather than fail or crop into padding as the authors' code does.
        scale = cfg.crop_size / min(w, h)
        w, h = max(cfg.crop_size, round(w * scale)), max(cfg.crop_size, round(h * scale))
    return w, h


def sample_params(size: tuple[int, int], cfg: DataConfig, rng: random.Random) -> TransformParams:
    """Random crop offsets and flip for an image of original `size` (w, h), as the authors' get_params."""
    w, h = resized_size(size, cfg)
    x = y = 0
    if _crops(cfg):
        x = rng.randint(0, max(0, w - cfg.crop_size))
        y = rng.randint(0, max(0, h - cfg.crop_size))
    return TransformParams(x, y, cfg.flip and rng.random() > 0.5)


def resize(img: Image.Image, cfg: DataConfig) -> Image.Image:
    """The deterministic step of cfg.preprocess: bicubic resize to `resized_size` (a cache may keep its result)."""
    target = resized_size(img.size, cfg)
    return img if target == img.size else img.resize(target, Image.Resampling.BICUBIC)


def crop_and_flip(img: Image.Image, params: TransformParams, cfg: DataConfig) -> Image.Image:
    """The random step, on an image already passed through `resize`."""
    if _crops(cfg):
        w, h = img.size
        # Clamped so that params drawn for a slightly different size still give a full crop.
        x, y = min(params.crop_x, w - cfg.crop_size), min(params.crop_y, h - cfg.crop_size)
        img = img.crop((x, y, x + cfg.crop_size, y + cfg.crop_size))
    if params.flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img


def apply_transform(img: Image.Image, params: TransformParams, cfg: DataConfig) -> Image.Image:
    """Resize (bicubic), crop and flip `img` as cfg.preprocess and `params` say."""
    return crop_and_flip(resize(img, cfg), params, cfg)


def test_transform(img: Image.Image, cfg: DataConfig) -> Image.Image:
    """Deterministic variant for fixed sample grids: centre crop, no flip."""
    w, h = resized_size(img.size, cfg)
    centre = TransformParams(max(0, (w - cfg.crop_size) // 2), max(0, (h - cfg.crop_size) // 2), False)
    return apply_transform(img, centre, cfg)


# The name starts with "test": without this, pytest would collect it from any test module
# that imports it and fail for lack of fixtures.
test_transform.__test__ = False  # type: ignore[attr-defined]
