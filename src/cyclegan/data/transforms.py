"""Preprocessing as in the authors' code (resize, crop, flip), with Pillow only.

Random choices are drawn up front into `TransformParams` from an explicit
`random.Random`, so the same seed gives the same crop in any worker process, and
the two halves of a paired image can share one crop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from ..config import DataConfig


@dataclass(frozen=True)
class TransformParams:
    crop_x: int
    crop_y: int
    flip: bool


def _round_to(value: int, base: int = 4) -> int:
    return max(base, int(round(value / base) * base))


def resized_size(size: tuple[int, int], cfg: DataConfig) -> tuple[int, int]:
    """(w, h) after the resize step of cfg.preprocess, before cropping."""
    w, h = size
    if cfg.preprocess == "resize_and_crop":
        return cfg.load_size, cfg.load_size
    if cfg.preprocess in ("scale_width", "scale_width_and_crop"):
        return cfg.load_size, int(max(cfg.load_size * h / w, cfg.crop_size))
    if cfg.preprocess == "none":
        return _round_to(w), _round_to(h)
    return size  # crop


def _crops(cfg: DataConfig) -> bool:
    return cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop")


def sample_params(size: tuple[int, int], cfg: DataConfig, rng: random.Random) -> TransformParams:
    w, h = resized_size(size, cfg)
    x = rng.randint(0, max(0, w - cfg.crop_size)) if _crops(cfg) else 0
    y = rng.randint(0, max(0, h - cfg.crop_size)) if _crops(cfg) else 0
    return TransformParams(x, y, cfg.flip and rng.random() > 0.5)


def apply_transform(img: Image.Image, params: TransformParams, cfg: DataConfig) -> Image.Image:
    target = resized_size(img.size, cfg)
    if target != img.size:
        img = img.resize(target, Image.BICUBIC)
    if _crops(cfg):
        w, h = img.size
        if w < cfg.crop_size or h < cfg.crop_size:
            # An image smaller than the crop is scaled up rather than failing the run.
            scale = cfg.crop_size / min(w, h)
            img = img.resize((max(cfg.crop_size, round(w * scale)), max(cfg.crop_size, round(h * scale))),
                             Image.BICUBIC)
            w, h = img.size
        x, y = min(params.crop_x, w - cfg.crop_size), min(params.crop_y, h - cfg.crop_size)
        img = img.crop((x, y, x + cfg.crop_size, y + cfg.crop_size))
    if params.flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def eval_transform(img: Image.Image, cfg: DataConfig) -> Image.Image:
    """Deterministic variant: centre crop, no flip."""
    w, h = resized_size(img.size, cfg)
    centre = TransformParams(max(0, (w - cfg.crop_size) // 2), max(0, (h - cfg.crop_size) // 2), False)
    return apply_transform(img, centre, cfg)
