"""Each domain's image format (channels, pixel type, intensity range): detected from the
training files once, stored in the run's config, and read back by translate."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Literal

from ..config import ConfigError, TrainConfig
from .datasets import checked_files
from .images import DatasetError
from .native import DomainFormat, FileKind, domain_kind, dtype_range, percentile_range

Domain = Literal["A", "B"]


def domain_format(cfg: TrainConfig, domain: Domain) -> DomainFormat:
    """How `domain` of a run's config reads and writes images (configs of older runs: classic 8-bit)."""
    side = domain.lower()
    channels = cfg.model.input_nc if domain == "A" else cfg.model.output_nc
    dtype = getattr(cfg.data, f"dtype_{side}") or "uint8"
    mode, fixed = getattr(cfg.data, f"intensity_{side}"), getattr(cfg.data, f"intensity_range_{side}")
    if mode == "dtype" and fixed is None:
        if dtype == "uint8" and channels in (1, 3):
            return DomainFormat(channels)  # the 8-bit path, exactly as before
        low, high = dtype_range(dtype)
    else:
        if fixed is None:
            raise ConfigError(f"data.intensity_range_{side} is not set: {mode} mapping of domain {domain} "
                              "needs the range computed at training start; retrain, or pass "
                              f"--intensity-range-{side} MIN MAX")
        low, high = fixed
    return DomainFormat(channels, dtype, float(low), float(high), classic=False)


def _domain_folders(cfg: TrainConfig, root: Path) -> tuple[Path, Path]:
    """Folders of the model's domains A and B (direction BtoA swaps them)."""
    dir_a, dir_b = root / f"{cfg.data.phase}A", root / f"{cfg.data.phase}B"
    return (dir_b, dir_a) if cfg.data.direction == "BtoA" else (dir_a, dir_b)


def resolve_formats(cfg: TrainConfig, root: str | Path) -> tuple[TrainConfig, list[str]]:
    """`cfg` with each domain's channels, pixel type and intensity range taken from its files.

    8-bit grayscale/RGB folders keep the configured channels and the dtype mapping (the
    behaviour of every earlier version); 16-bit, float and N-channel folders set the channel
    count and pixel type from the files. A folder mixing kinds is refused in one line.
    Returns the config and one line per non-classic domain to show the user.
    """
    data, model = cfg.data, cfg.model
    if data.dataset_mode == "aligned":
        if any(getattr(data, f) not in (None, "dtype") for f in ("intensity_a", "intensity_b", "intensity_range_a",
                                                                  "intensity_range_b")):
            raise ConfigError("intensity mappings need the unaligned layout (ROOT/trainA, ROOT/trainB); "
                              "the aligned layout reads 8-bit A|B images")
        return cfg, []
    folders = _domain_folders(cfg, Path(root))
    changes: dict[str, dict] = {"model": {}, "data": {}}
    notes = []
    for domain, folder, nc_field in (("A", folders[0], "input_nc"), ("B", folders[1], "output_nc")):
        side = domain.lower()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped files are reported once, by the dataset
            files = checked_files(folder, data)
        kind: FileKind = domain_kind(files)
        channels = getattr(model, nc_field) if kind.classic else kind.channels
        if kind.classic and channels not in (1, 3):
            raise DatasetError(f"{folder} holds 8-bit images, which are read as grayscale or RGB: --{nc_field.replace('_', '-')} "
                               f"must be 1 or 3, not {channels} (store N-channel images as TIFF)")
        dtype = "uint8" if kind.classic else kind.dtype
        stored = getattr(data, f"dtype_{side}")
        if stored is not None and stored != dtype:
            raise ConfigError(f"data.dtype_{side} is {stored} but {folder} holds {dtype} images; "
                              "drop --dtype-" + side + " (it is detected) or point to the right folder")
        mode, fixed = getattr(data, f"intensity_{side}"), getattr(data, f"intensity_range_{side}")
        if fixed is not None and mode == "dtype":
            mode = "range"  # --intensity-range-a alone says what is meant
        if mode == "percentile" and fixed is None:
            probe_fmt = DomainFormat(channels, dtype, classic=False)
            fixed = percentile_range(files, probe_fmt, data.intensity_percentiles)
        if kind.classic and mode == "dtype":
            continue  # 8-bit grayscale/RGB: the config stays exactly as given
        changes["model"][nc_field] = channels
        changes["data"].update({f"dtype_{side}": dtype, f"intensity_{side}": mode, f"intensity_range_{side}": fixed})
        low, high = fixed if fixed is not None else dtype_range(dtype)
        notes.append(f"domain {domain} ({folder}): {channels}-channel {dtype} images, intensity {mode} "
                     f"{low:g}..{high:g} -> -1..1")
    resolved = dataclasses.replace(
        cfg, model=dataclasses.replace(model, **changes["model"]), data=dataclasses.replace(data, **changes["data"]))
    try:
        return resolved.validate(), notes
    except ConfigError as err:
        raise DatasetError(f"the images' channel counts do not fit the options: {err}") from None
