"""Datasets of the two training layouts, the translation input set, and the sampler
that pairs A with B each epoch.

Training items are requested as (index_a, index_b, sample_seed) tuples made by
`PairSampler`: which images meet and how they are cropped depend only on the run
seed and the epoch, so a resumed run sees the data it would have seen, and the
number of worker processes changes nothing.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..config import ConfigError, DataConfig
from .images import BAD_IMAGE_HINT, DatasetError, ImageLoadError, list_images, load_image, to_tensor
from .native import DomainFormat, check_header, image_tensor, read_image
from .transforms import crop_and_flip, resize, resized_size, sample_params

Item = tuple[int, int, int]
CacheKey = tuple[Path, int]  # a file and the channel count it is read with
T = TypeVar("T")


def _check_channels(*channels: int) -> None:
    for c in channels:
        if c not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {c}")


def _formats(channels_a: int, channels_b: int,
             formats: tuple[DomainFormat, DomainFormat] | None) -> tuple[DomainFormat, DomainFormat]:
    """The domains' formats: given (scientific images), or the 8-bit path with these channels."""
    if formats is None:
        _check_channels(channels_a, channels_b)
        return DomainFormat(channels_a), DomainFormat(channels_b)
    return formats


def checked_files(folder: Path, cfg: DataConfig) -> list[Path]:
    """Images of `folder` whose header reads; bad ones raise (error mode) or are dropped with a warning (skip)."""
    good = []
    for path in list_images(folder, cfg.max_dataset_size):
        problem = check_header(path)  # Pillow's header check; TIFFs through tifffile
        if problem is None:
            good.append(path)
        elif cfg.on_bad_image == "skip":
            warnings.warn(f"skipping unreadable image {path}: {problem}", stacklevel=3)
        else:
            raise ImageLoadError(f"cannot read image {path}: {problem} ({BAD_IMAGE_HINT})")
    if not good:
        raise DatasetError(f"folder {folder} has no readable images (all were skipped); fix or replace them")
    return good


@dataclass(frozen=True)
class Decoded:
    """An image after decoding and the deterministic resize: what the random crop and flip start from."""

    size: tuple[int, int]  # (w, h) before resizing, which the crop offsets are drawn from
    image: Image.Image  # already resized


def decode(img: Image.Image, cfg: DataConfig) -> Decoded:
    return Decoded(img.size, resize(img, cfg))


def available_memory() -> int:
    """Bytes this machine can still give out (MemAvailable; free pages where /proc is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class _PairDataset(Dataset):
    """What both training layouts share: the epoch length, skipping of bad files, and the
    in-memory cache of decoded, resized images.

    Decoding a JPEG and resizing it cost more CPU than the rest of loading; both are the
    same every epoch, so `preload` does them once for every file and items then only crop
    and flip. Items are identical with and without the cache. The cache is filled in the
    main process before the DataLoader starts its workers, which share it copy-on-write.
    """

    cfg: DataConfig
    _cache: dict[CacheKey, object] | None = None  # key -> decoded entry, or the ImageLoadError it raised

    def _keys(self) -> list[CacheKey]:
        """(file, channels) of everything items read."""
        raise NotImplementedError

    def _decode(self, key: CacheKey) -> object:
        raise NotImplementedError

    def _entry_bytes(self, key: CacheKey, size: tuple[int, int]) -> int:
        """Cache memory of one entry, from the file's (w, h)."""
        raise NotImplementedError

    def _decoded(self, key: CacheKey) -> object:
        if self._cache is None:
            return self._decode(key)
        entry = self._cache[key]
        if isinstance(entry, ImageLoadError):
            raise entry
        return entry

    def cache_bytes(self) -> int:
        """Memory the cache would take, from the image headers alone."""
        total = 0
        for key in self._keys():
            try:
                with Image.open(key[0]) as img:
                    size = img.size
            except (OSError, ValueError):
                continue  # a file that cannot be read takes no room
            total += self._entry_bytes(key, size)
        return total

    def preload(self) -> None:
        """Decode and resize every file once; unreadable ones keep their error for `_load` to handle."""
        cache: dict[CacheKey, object] = {}
        for key in dict.fromkeys(self._keys()):
            try:
                cache[key] = self._decode(key)
            except ImageLoadError as err:
                cache[key] = err
        self._cache = cache

    @property
    def cached(self) -> bool:
        return self._cache is not None

    @property
    def len_a(self) -> int:
        raise NotImplementedError

    @property
    def len_b(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        # As in the authors' code: an epoch visits every image of the larger domain once.
        return max(self.len_a, self.len_b)

    def _load(self, files: list[Path], index: int, read: Callable[[Path], T]) -> tuple[Path, T]:
        """read(files[index]); in skip mode a file that fails passes on to the next index (mod length)."""
        for attempt in range(len(files)):
            path = files[(index + attempt) % len(files)]
            try:
                return path, read(path)
            except ImageLoadError as err:
                if self.cfg.on_bad_image != "skip":
                    raise
                warnings.warn(f"skipping: {err}", stacklevel=3)
        raise DatasetError(f"no readable image left among the {len(files)} files of {files[0].parent}; "
                           "fix or replace them")


class UnalignedDataset(_PairDataset):
    """ROOT/{phase}A and ROOT/{phase}B: two unpaired folders (direction BtoA swaps them)."""

    def __init__(self, root: str | Path, cfg: DataConfig, channels_a: int, channels_b: int,
                 phase: str | None = None, formats: tuple[DomainFormat, DomainFormat] | None = None):
        self.format_a, self.format_b = _formats(channels_a, channels_b, formats)
        channels_a, channels_b = self.format_a.channels, self.format_b.channels
        phase = phase or cfg.phase
        dir_a, dir_b = Path(root) / f"{phase}A", Path(root) / f"{phase}B"
        if cfg.direction == "BtoA":
            dir_a, dir_b = dir_b, dir_a
        self.cfg = cfg
        self.channels_a, self.channels_b = channels_a, channels_b
        self.files_a = checked_files(dir_a, cfg)
        self.files_b = checked_files(dir_b, cfg)
        self._in_a = set(self.files_a)

    @property
    def len_a(self) -> int:
        return len(self.files_a)

    @property
    def len_b(self) -> int:
        return len(self.files_b)

    def _keys(self) -> list[CacheKey]:
        return [(p, self.channels_a) for p in self.files_a] + [(p, self.channels_b) for p in self.files_b]

    def _format(self, key: CacheKey) -> DomainFormat:
        return self.format_a if key[0] in self._in_a and key[1] == self.channels_a else self.format_b

    def _decode(self, key: CacheKey) -> Decoded:
        return decode(read_image(key[0], self._format(key)), self.cfg)

    def _entry_bytes(self, key: CacheKey, size: tuple[int, int]) -> int:
        w, h = resized_size(size, self.cfg)
        return w * h * key[1] * (1 if self._format(key).classic else 4)  # float32 planes off the 8-bit path

    def __getitem__(self, item: Item) -> dict:
        index_a, index_b, seed = item
        rng = random.Random(seed)
        path_a, dec_a = self._load(self.files_a, index_a, lambda p: self._decoded((p, self.channels_a)))
        path_b, dec_b = self._load(self.files_b, index_b, lambda p: self._decoded((p, self.channels_b)))
        params_a = sample_params(dec_a.size, self.cfg, rng)  # A first, then B: fixed draw order
        params_b = sample_params(dec_b.size, self.cfg, rng)
        return {
            "a": image_tensor(crop_and_flip(dec_a.image, params_a, self.cfg), self.format_a),
            "b": image_tensor(crop_and_flip(dec_b.image, params_b, self.cfg), self.format_b),
            "path_a": str(path_a),
            "path_b": str(path_b),
        }


def split_aligned(path: Path) -> tuple[Image.Image, Image.Image]:
    """Left and right halves of an A|B image (pix2pix format), read as RGB."""
    img = load_image(path, 3)
    w, h = img.size
    if w < 2:
        raise ImageLoadError(f"cannot split image {path}: {w} px wide, expected A|B side by side "
                             f"({BAD_IMAGE_HINT})")
    # The authors crop B as (w2, 0, w, h), one column wider than A for an odd width; here the
    # right half drops the last column so that both halves have the same size and crop.
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))


class AlignedDataset(_PairDataset):
    """ROOT/{phase}/*.jpg, each image A|B side by side (pix2pix format, e.g. facades).

    paired: A and B come from the same file with the same crop and flip (pix2pix).
    unpaired: the B half comes from file index_b with its own crop, so the halves are
    shuffled independently, which is how CycleGAN trains on a paired data set.
    """

    def __init__(self, root: str | Path, cfg: DataConfig, channels_a: int, channels_b: int,
                 phase: str | None = None):
        _check_channels(channels_a, channels_b)
        self.cfg = cfg
        self.channels_a, self.channels_b = channels_a, channels_b
        self.files = checked_files(Path(root) / (phase or cfg.phase), cfg)

    @property
    def len_a(self) -> int:
        return len(self.files)

    @property
    def len_b(self) -> int:
        return len(self.files)

    def _keys(self) -> list[CacheKey]:
        return [(p, 3) for p in self.files]  # split_aligned reads RGB; each half is converted after

    def _decode(self, key: CacheKey) -> tuple[Decoded, Decoded]:
        """The A half and the B half of a file, each converted to its channel count and resized."""
        left, right = split_aligned(key[0])
        half_a, half_b = (right, left) if self.cfg.direction == "BtoA" else (left, right)
        # as the authors: RGB first, then grayscale
        return (decode(half_a.convert("RGB" if self.channels_a == 3 else "L"), self.cfg),
                decode(half_b.convert("RGB" if self.channels_b == 3 else "L"), self.cfg))

    def _entry_bytes(self, key: CacheKey, size: tuple[int, int]) -> int:
        w, h = resized_size((size[0] // 2, size[1]), self.cfg)
        return w * h * (self.channels_a + self.channels_b)

    def _halves(self, index: int) -> tuple[Path, Decoded, Decoded]:
        path, (half_a, half_b) = self._load(self.files, index, lambda p: self._decoded((p, 3)))
        return path, half_a, half_b

    def __getitem__(self, item: Item) -> dict:
        index_a, index_b, seed = item
        rng = random.Random(seed)
        path_a, dec_a, pair_b = self._halves(index_a)
        params_a = sample_params(dec_a.size, self.cfg, rng)
        if self.cfg.paired:
            path_b, dec_b, params_b = path_a, pair_b, params_a
        else:
            path_b, _, dec_b = self._halves(index_b)
            params_b = sample_params(dec_b.size, self.cfg, rng)
        return {
            "a": to_tensor(crop_and_flip(dec_a.image, params_a, self.cfg)),
            "b": to_tensor(crop_and_flip(dec_b.image, params_b, self.cfg)),
            "path_a": str(path_a),
            "path_b": str(path_b),
        }


class ImageFolderDataset(Dataset):
    """Files to translate, each at its own size (no resizing or cropping)."""

    def __init__(self, paths: list[Path], channels: int):
        _check_channels(channels)
        self.paths, self.channels = list(paths), channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        return {"image": to_tensor(load_image(path, self.channels)), "path": str(path)}


class PairSampler(Sampler[Item]):
    """Yields (index_a, index_b, sample_seed) for one epoch of max(len_a, len_b) positions.

    As in the authors' code (a shuffled loader over max(len_a, len_b) items, A taken
    modulo its length, B drawn at random): A is visited in a random order, cycling
    when it is the smaller domain, and each A meets a random B. serial: both in order.
    The plan is a function of (seed, epoch) only; `set_epoch(epoch, start)` resumes it
    at position `start`.

    Distributed training (`world_size` processes): each step consumes `batch_size` items
    per process, rank r taking the r-th block of every `batch_size * world_size` items, and
    the epoch is cut to a multiple of that so every process runs the same number of steps.
    `start` counts items of the whole plan, as on one process.
    """

    def __init__(self, len_a: int, len_b: int, seed: int, serial: bool = False,
                 rank: int = 0, world_size: int = 1, batch_size: int = 1):
        if len_a < 1 or len_b < 1:
            raise ValueError(f"PairSampler needs images in both domains, got len_a={len_a}, len_b={len_b}")
        self.len_a, self.len_b, self.seed, self.serial = len_a, len_b, seed, serial
        self.length = max(len_a, len_b)
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        stride = batch_size * world_size
        if world_size > 1 and self.length < stride:
            raise ValueError(f"{self.length} images per epoch cannot fill one step of {world_size} processes "
                             f"x batch {batch_size}; use fewer processes or a smaller --batch-size")
        # items of the plan used per epoch (all of them on one process)
        self.epoch_length = self.length - self.length % stride if world_size > 1 else self.length
        self.epoch, self.start = 1, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= self.epoch_length:
            raise ValueError(f"start must be in [0, {self.epoch_length}], got {start}")
        self.epoch, self.start = epoch, start

    def plan(self, epoch: int) -> list[Item]:
        """The whole epoch, from position 0."""
        # Modulo keeps any int seed inside the range torch.Generator accepts.
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        n = self.length
        order = torch.arange(n) if self.serial else torch.randperm(n, generator=g)
        index_b = torch.arange(n) % self.len_b if self.serial else torch.randint(self.len_b, (n,), generator=g)
        seeds = torch.randint(2**31 - 1, (n,), generator=g)
        return [(a % self.len_a, b, s) for a, b, s in zip(order.tolist(), index_b.tolist(), seeds.tolist())]

    def __iter__(self) -> Iterator[Item]:
        plan = self.plan(self.epoch)
        if self.world_size == 1:
            return iter(plan[self.start:])
        block, stride = self.batch_size, self.batch_size * self.world_size
        mine = (plan[s + self.rank * block: s + (self.rank + 1) * block]
                for s in range(self.start, self.epoch_length, stride))
        return (item for items in mine for item in items)

    def __len__(self) -> int:
        return (self.epoch_length - self.start) // self.world_size


def build_train_dataset(cfg: DataConfig, root: str | Path, channels_a: int, channels_b: int,
                        formats: tuple[DomainFormat, DomainFormat] | None = None) -> UnalignedDataset | AlignedDataset:
    """The training dataset of cfg.dataset_mode under `root`; `formats` for scientific images (unaligned only)."""
    if formats is not None and all(f.classic for f in formats):
        formats = None
    if cfg.dataset_mode == "aligned":
        if formats is not None:
            raise DatasetError("the aligned layout reads 8-bit A|B images; put 16-bit, float or N-channel images "
                               "in two folders (ROOT/trainA, ROOT/trainB)")
        return AlignedDataset(root, cfg, channels_a, channels_b)
    if cfg.paired:
        raise DatasetError(f"--paired needs --dataset-mode aligned ({root} is read as unaligned folders, "
                           "which have no pairs); drop --paired or use the aligned layout")
    return UnalignedDataset(root, cfg, channels_a, channels_b, formats=formats)


def cache_if_it_fits(dataset: UnalignedDataset | AlignedDataset, mode: str, copies: int = 1) -> int:
    """Fill the dataset's decoded-image cache as cfg.data.cache_images says; the bytes it took (0: not filled).

    auto: when `copies` caches (one per training process on this machine) take at most a
    quarter of the memory available now. on: whenever they fit at all, else a ConfigError.
    """
    if mode == "off":
        return 0
    size = dataset.cache_bytes()
    need, have = size * copies, available_memory()
    if need > (have if mode == "on" else have // 4):
        if mode == "auto":
            return 0
        raise ConfigError(f"--cache-images on needs {need / 2**20:.0f} MiB for the decoded training images but "
                          f"{have / 2**20:.0f} MiB are available; use --cache-images off (or a smaller --load-size)")
    dataset.preload()
    return size
