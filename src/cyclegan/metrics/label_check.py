"""Is a set of images label maps? Checked before a palette learned from them is trusted.

`learn_palette` always returns colours: given photos it returns a dozen or so colours
about `merge_distance` apart, chopped out of a continuous distribution, and the
segmentation scores computed with them are meaningless. Label maps differ in two ways
that survive JPEG: most of their pixels lie close to one palette colour, and their
colours are far apart. Measured on the 400 facades training images: label halves
have 70% of their pixels within 12 of a palette colour and a median distance of 77
between a colour and its nearest neighbour; the photo halves 35% and 42. The images
are refused when both measures look like photos.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .paired import _as_rgb_array

NEAR = 12.0  # RGB distance within which a pixel counts as "on" a palette colour
MIN_COVERAGE = 0.5
MIN_SPREAD = 55.0
SAMPLE = 16  # images looked at: the measures settle within a few


def label_map_measures(images: Sequence, palette: np.ndarray) -> tuple[float, float]:
    """(share of pixels within NEAR of a palette colour, median nearest-neighbour distance of the palette)."""
    pal = np.asarray(palette, dtype=np.float32)
    near = total = 0
    for item in list(images)[:SAMPLE]:
        px = _as_rgb_array(item).reshape(-1, 3).astype(np.float32)
        dist = np.sqrt(((px[:, None, :] - pal[None]) ** 2).sum(-1)).min(1)
        near += int((dist <= NEAR).sum())
        total += len(px)
    if len(pal) < 2:
        spread = 0.0
    else:
        between = np.sqrt(((pal[:, None] - pal[None]) ** 2).sum(-1))
        np.fill_diagonal(between, np.inf)
        spread = float(np.median(between.min(1)))
    return near / max(total, 1), spread


def look_like_label_maps(images: Sequence, palette: np.ndarray) -> bool:
    coverage, spread = label_map_measures(images, palette)
    return coverage >= MIN_COVERAGE or spread >= MIN_SPREAD
