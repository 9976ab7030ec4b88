"""Datasets of the three layouts, and the sampler that pairs A with B each epoch.

Items are requested as (index_a, index_b, sample_seed) tuples made by
`PairSampler`: which images meet and how they are cropped depend only on the run
seed and the epoch, so a resumed run sees the same data it would have seen, and
worker processes do not change anything.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from ..config import DataConfig
from .images import DatasetError, ImageLoadError, check_image_header, list_images, load_image, to_tensor
from .transforms import TransformParams, apply_transform, sample_params

Item = tuple[int, int, int]


def _checked(files: list[Path], cfg: DataConfig) -> list[Path]:
    """Drop (skip mode) or reject (error mode) files whose header cannot be read."""
    good = []
    for path in files:
        problem = check_image_header(path)
        if problem is None:
            good.append(path)
        elif cfg.on_bad_image == "skip":
            warnings.warn(f"skipping unreadable image {path}: {problem}", stacklevel=3)
        else:
            raise ImageLoadError(f"cannot read image {path}: {problem} (re-export or remove it, "
                                 "or pass --on-bad-image skip)")
    return good


class _PairDataset(Dataset):
    len_a: int
    len_b: int
    cfg: DataConfig

    def __len__(self) -> int:
        return max(self.len_a, self.len_b)

    def _load_with_skip(self, files: list[Path], index: int, channels: int, crop: tuple[int, int] | None = None):
        """Load files[index]; in skip mode, a file that fails to decode passes to the next one."""
        for attempt in range(len(files)):
            path = files[(index + attempt) % len(files)]
            try:
                img = load_image(path, 3 if crop is not None else channels)
                return path, img
            except ImageLoadError as err:
                if self.cfg.on_bad_image != "skip":
                    raise
                warnings.warn(f"skipping: {err}", stacklevel=2)
        raise DatasetError(f"no readable image left among {len(files)} files in {files[0].parent}")


class UnalignedDataset(_PairDataset):
    """ROOT/{phase}A and ROOT/{phase}B: two unpaired folders."""

    def __init__(self, root: str | Path, cfg: DataConfig, channels_a: int, channels_b: int, phase: str | None = None):
        phase = phase or cfg.phase
        root = Path(root)
        dir_a, dir_b = root / f"{phase}A", root / f"{phase}B"
        if cfg.direction == "BtoA":
            dir_a, dir_b = dir_b, dir_a
        self.cfg = cfg
        self.channels_a, self.channels_b = channels_a, channels_b
        self.files_a = self._domain(dir_a)
        self.files_b = self._domain(dir_b)
        self.len_a, self.len_b = len(self.files_a), len(self.files_b)

    def _domain(self, folder: Path) -> list[Path]:
        files = _checked(list_images(folder, self.cfg.max_dataset_size), self.cfg)
        if not files:
            raise DatasetError(f"folder {folder} has no readable images")
        return files

    def __getitem__(self, item: Item) -> dict:
        index_a, index_b, seed = item
        rng = random.Random(seed)
        path_a, img_a = self._load_with_skip(self.files_a, index_a, self.channels_a)
        path_b, img_b = self._load_with_skip(self.files_b, index_b, self.channels_b)
        params_a = sample_params(img_a.size, self.cfg, rng)
        params_b = sample_params(img_b.size, self.cfg, rng)
        return {
            "a": to_tensor(apply_transform(img_a, params_a, self.cfg)),
            "b": to_tensor(apply_transform(img_b, params_b, self.cfg)),
            "path_a": str(path_a),
            "path_b": str(path_b),
        }


class AlignedDataset(_PairDataset):
    """ROOT/{phase}/*.jpg, each image A|B side by side (pix2pix format, e.g. facades).

    paired: A and B come from the same file with the same crop and flip.
    unpaired: the B half comes from another file (index_b), shuffled independently,
    which is how CycleGAN trains on paired data sets.
    """

    def __init__(self, root: str | Path, cfg: DataConfig, channels_a: int, channels_b: int, phase: str | None = None):
        phase = phase or cfg.phase
        self.cfg = cfg
        self.channels_a, self.channels_b = channels_a, channels_b
        self.files = _checked(list_images(Path(root) / phase, cfg.max_dataset_size), cfg)
        if not self.files:
            raise DatasetError(f"folder {Path(root) / phase} has no readable images")
        self.len_a = self.len_b = len(self.files)

    def _halves(self, index: int):
        path, img = self._load_with_skip(self.files, index, 3, crop=(0, 0))
        w, h = img.size
        if w < 2:
            raise ImageLoadError(f"cannot split {path}: {w} px wide, expected A|B side by side")
        # With an odd width the right half drops the last column, so both halves match.
        half = w // 2
        left, right = img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))
        a, b = (right, left) if self.cfg.direction == "BtoA" else (left, right)
        return path, a, b

    def _finish(self, img, params: TransformParams, channels: int) -> torch.Tensor:
        img = img.convert("RGB" if channels == 3 else "L")
        return to_tensor(apply_transform(img, params, self.cfg))

    def __getitem__(self, item: Item) -> dict:
        index_a, index_b, seed = item
        rng = random.Random(seed)
        path_a, img_a, pair_b = self._halves(index_a)
        params_a = sample_params(img_a.size, self.cfg, rng)
        if self.cfg.paired:
            path_b, img_b, params_b = path_a, pair_b, params_a
        else:
            path_b, _, img_b = self._halves(index_b)
            params_b = sample_params(img_b.size, self.cfg, rng)
        return {
            "a": self._finish(img_a, params_a, self.channels_a),
            "b": self._finish(img_b, params_b, self.channels_b),
            "path_a": str(path_a),
            "path_b": str(path_b),
        }


class ImageFolderDataset(Dataset):
    """Files to translate, at their own size."""

    def __init__(self, paths: list[Path], channels: int):
        self.paths, self.channels = paths, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return {"image": to_tensor(load_image(self.paths[index], self.channels)), "path": str(self.paths[index])}


class PairSampler(Sampler[Item]):
    """Yields (index_a, index_b, sample_seed) for one epoch of max(len_a, len_b) positions.

    As in the authors' code: A is visited in a random order (cycling when A is the
    smaller domain) and each A meets a random B. The plan is a function of (seed,
    epoch) only; `set_epoch(epoch, start)` resumes it at position `start`.
    """

    def __init__(self, len_a: int, len_b: int, seed: int, serial: bool = False):
        self.len_a, self.len_b, self.seed, self.serial = len_a, len_b, seed, serial
        self.length = max(len_a, len_b)
        self.epoch, self.start = 1, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def plan(self, epoch: int) -> list[Item]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = self.length
        order = torch.arange(n) if self.serial else torch.randperm(n, generator=g)
        index_b = torch.arange(n) % self.len_b if self.serial else torch.randint(self.len_b, (n,), generator=g)
        seeds = torch.randint(2**31 - 1, (n,), generator=g)
        return [(int(o) % self.len_a, int(b), int(s)) for o, b, s in zip(order, index_b, seeds)]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.plan(self.epoch)[self.start:])

    def __len__(self) -> int:
        return max(0, self.length - self.start)


def build_train_dataset(cfg: DataConfig, root: str | Path, channels_a: int, channels_b: int) -> _PairDataset:
    if cfg.dataset_mode == "aligned":
        return AlignedDataset(root, cfg, channels_a, channels_b)
    if cfg.paired:
        raise DatasetError("--paired needs --dataset-mode aligned (unaligned folders have no pairs)")
    return UnalignedDataset(root, cfg, channels_a, channels_b)
