"""Scientific images: any channel count, 8/16-bit integer and float pixels, TIFF, and
the intensity mapping between raw pixel values and the networks' [-1, 1].

8-bit files that Pillow decodes into grayscale or RGB take the path of `images.py`
unchanged ("classic": Pillow's bicubic on 8-bit values, then x / 127.5 - 1), so RGB
datasets train and translate exactly as before. Everything else (16-bit PNG, any TIFF
that is not 8-bit grayscale/RGB, float TIFF, N-channel TIFF) is "native": read with its
own dtype and channel count (TIFF through tifffile), kept as float32 planes while it is
resized, cropped and flipped, mapped to [-1, 1] by the domain's intensity range, and
written back by translate in the domain's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .images import (
    BAD_IMAGE_HINT, DatasetError, ImageLoadError, _DECODE_ERRORS, _reason, check_image_header, load_image, to_pil, to_tensor,
)

TIFF_SUFFIXES = (".tif", ".tiff")
# Pillow modes of native single-channel files -> numpy dtype name.
_PIL_NATIVE = {"I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16", "I;16N": "uint16", "I": "int32", "F": "float32"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FileKind:
    """What a file holds, from its header: channels, pixel type, and which path reads it."""

    channels: int
    dtype: str  # numpy dtype name of the stored pixels
    classic: bool  # 8-bit grayscale/RGB-like, decoded by Pillow as before
    tiff: bool

    def describe(self) -> str:
        return f"{self.channels}-channel {self.dtype}" + (" TIFF" if self.tiff else "")


@dataclass(frozen=True)
class DomainFormat:
    """How one domain's images become tensors and back.

    classic: today's 8-bit path (Pillow decode to `channels` 1 or 3, x / 127.5 - 1).
    Otherwise raw values `low` .. `high` map linearly to -1 .. 1 (clamped), and
    translated images are written as `dtype`.
    """

    channels: int
    dtype: str = "uint8"
    low: float = 0.0
    high: float = 255.0
    classic: bool = True


CLASSIC_RGB = DomainFormat(3)


def dtype_range(dtype: str) -> tuple[float, float]:
    """The default intensity range of a pixel type: its integer range, [0, 1] for floats."""
    kind = np.dtype(dtype)
    if kind.kind in "ui":
        info = np.iinfo(kind)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def _png_is_colour_16bit(path: Path) -> bool:
    """A 16-bit colour PNG: Pillow decodes it to 8 bits per channel, silently."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    # IHDR: signature (8), length (4), type (4), width (4), height (4), bit depth (1), colour type (1)
    return head[:8] == _PNG_SIGNATURE and head[24] == 16 and head[25] in (2, 4, 6)


def _tiff_layout(path: Path) -> tuple[tuple[int, ...], str, str]:
    import tifffile  # imported here: only TIFF users need it

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, axes, dtype = tuple(series.shape), series.axes, series.dtype.name
        count = len(tif.series)
    # One image per file: pages are refused unless the file itself labels them as channels
    # (axes C, as ImageJ writes); an unlabelled page axis (Q) may be slices, times or bands.
    if count > 1 or any(a not in "YXSC" for a in axes) or axes.count("S") + axes.count("C") > 1:
        raise ImageLoadError(f"cannot read image {path}: a multi-page TIFF (axes {axes}, shape {shape}); one image "
                             "per file is read: split the pages into files, or store bands as channels with "
                             "tifffile.imwrite(path, hwc, photometric='minisblack', planarconfig='contig')")
    return shape, axes, dtype


def probe(path: str | Path) -> FileKind:
    """Channels and pixel type of a file from its header; ImageLoadError (one line) if unreadable."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            try:
                shape, axes, dtype = _tiff_layout(path)
            except ImageLoadError:
                raise
            except Exception:  # noqa: BLE001 - tifffile's parser errors vary; Pillow decides below
                return _pil_kind(path, tiff=True)  # a TIFF Pillow reads (8-bit ones were read so before)
            channels = 1 if len(axes) == 2 else shape[axes.index("S" if "S" in axes else "C")]
            classic = dtype == "uint8" and channels in (1, 3) and axes[-1] in "XS"
            return FileKind(channels, dtype, classic, tiff=True)
        if _png_is_colour_16bit(path):
            raise ImageLoadError(f"cannot read image {path}: a 16-bit colour PNG, which Pillow can only read as "
                                 "8 bits; save it as a TIFF (tifffile.imwrite) to keep its depth")
        return _pil_kind(path, tiff=False)
    except ImageLoadError:
        raise
    except (*_DECODE_ERRORS, RuntimeError) as err:
        raise ImageLoadError(f"cannot read image {path}: {_reason(err)} ({BAD_IMAGE_HINT})") from None


def _pil_kind(path: Path, tiff: bool) -> FileKind:
    with Image.open(path) as img:
        if img.mode in _PIL_NATIVE:
            return FileKind(1, _PIL_NATIVE[img.mode], classic=False, tiff=tiff)
        return FileKind(len(img.getbands()), "uint8", classic=True, tiff=tiff)


def check_header(path: Path) -> str | None:
    """The problem of a file as a short phrase, from its header (TIFFs through tifffile), or None."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        problem = check_image_header(path)
        if problem is not None:
            return problem
    try:
        probe(path)
    except ImageLoadError as err:
        return str(err).split(f"{path}: ", 1)[-1]
    return None


def read_array(path: str | Path) -> np.ndarray:
    """A native file fully decoded as an (H, W, C) array of its own dtype."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            shape, axes, _ = _tiff_layout(path)
            arr = tifffile.imread(path)
            if arr.ndim == 2:
                arr = arr[:, :, None]
            elif axes[0] in "SC":  # planar (C, H, W) -> (H, W, C)
                arr = np.moveaxis(arr, 0, -1)
            return arr
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img)
        return arr[:, :, None] if arr.ndim == 2 else arr
    except ImageLoadError:
        raise
    except (*_DECODE_ERRORS, RuntimeError) as err:
        raise ImageLoadError(f"cannot read image {path}: {_reason(err)} ({BAD_IMAGE_HINT})") from None


class Planes:
    """The channels of one image as Pillow 'F' (float32) images.

    It has the `size`, `resize`, `crop` and `transpose` of a PIL image, so the
    preprocessing of transforms.py (bicubic resize, crop, flip) runs on any channel
    count and depth without rounding to 8 bits.
    """

    def __init__(self, planes: Sequence[Image.Image]):
        self.planes = list(planes)

    @classmethod
    def from_array(cls, arr: np.ndarray) -> "Planes":
        arr = np.asarray(arr, dtype=np.float32)
        return cls([Image.fromarray(np.ascontiguousarray(arr[:, :, c]), mode="F") for c in range(arr.shape[2])])

    @property
    def size(self) -> tuple[int, int]:
        return self.planes[0].size

    def resize(self, size: tuple[int, int], resample=Image.Resampling.BICUBIC) -> "Planes":
        return Planes([p.resize(size, resample) for p in self.planes])

    def crop(self, box: tuple[int, int, int, int]) -> "Planes":
        return Planes([p.crop(box) for p in self.planes])

    def transpose(self, method) -> "Planes":
        return Planes([p.transpose(method) for p in self.planes])

    def array(self) -> np.ndarray:
        """(C, H, W) float32 raw values."""
        return np.stack([np.asarray(p, dtype=np.float32) for p in self.planes])


def load_planes(path: str | Path, fmt: DomainFormat) -> Planes:
    """A file of a non-classic domain, checked against the domain's channels and pixel type."""
    kind = probe(path)
    if kind.classic and fmt.dtype == "uint8":
        # 8-bit files in a domain with its own intensity range: decoded as before, mapped after
        arr = np.asarray(load_image(path, fmt.channels), dtype=np.float32)
        return Planes.from_array(arr[:, :, None] if arr.ndim == 2 else arr)
    if kind.channels != fmt.channels or kind.dtype != fmt.dtype:
        raise ImageLoadError(f"image {path} is {kind.describe()} but this domain holds {fmt.channels}-channel "
                             f"{fmt.dtype} images; convert it to match")
    return Planes.from_array(read_array(path))


def read_image(path: str | Path, fmt: DomainFormat) -> Image.Image | Planes:
    """A file as the domain reads it: a PIL image on the classic path, Planes otherwise."""
    return load_image(path, fmt.channels) if fmt.classic else load_planes(path, fmt)


def image_tensor(img: Image.Image | Planes, fmt: DomainFormat) -> torch.Tensor:
    """(C, H, W) float32 in [-1, 1]."""
    if fmt.classic:
        return to_tensor(img)
    arr = img.array()
    scaled = (arr - fmt.low) * (2.0 / (fmt.high - fmt.low)) - 1.0
    return torch.from_numpy(np.clip(scaled, -1.0, 1.0).astype(np.float32))


def tensor_array(t: torch.Tensor, fmt: DomainFormat) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W, C) raw values of fmt.dtype (integers rounded and clipped to its range)."""
    arr = (t.detach().float().cpu().clamp(-1, 1).numpy().astype(np.float64) + 1.0) * 0.5 * (fmt.high - fmt.low) + fmt.low
    arr = np.moveaxis(arr, 0, -1)
    kind = np.dtype(fmt.dtype)
    if kind.kind in "ui":
        info = np.iinfo(kind)
        arr = np.clip(np.round(arr), info.min, info.max)
    return arr.astype(kind)


def preview(t: torch.Tensor) -> Image.Image:
    """A viewable 8-bit image of a (C, H, W) tensor: grayscale or RGB as is, else the first channel."""
    return to_pil(t if t.shape[0] in (1, 3) else t[:1])


def output_suffix(fmt: DomainFormat, input_path: str | Path) -> str:
    """PNG where it holds the pixels exactly (8-bit gray/RGB, 16-bit gray) unless the input was a TIFF."""
    if fmt.classic:
        return ".png"
    png_ok = (fmt.dtype == "uint8" and fmt.channels in (1, 3)) or (fmt.dtype == "uint16" and fmt.channels == 1)
    return ".tif" if Path(input_path).suffix.lower() in TIFF_SUFFIXES or not png_ok else ".png"


def encode_image(t: torch.Tensor, size: tuple[int, int], fmt: DomainFormat, path: Path,
                 suffix: str | None = None) -> None:
    """Write a translated (C, H, W) tensor at `size` (w, h) as `path` in the domain's depth.

    `suffix` (.png or .tif; default: the path's) picks the format, so a temporary name can be written.
    """
    suffix = suffix or path.suffix
    if fmt.classic:
        out = to_pil(t)
        if out.size != size:
            out = out.resize(size, Image.BICUBIC)
        out.save(path, format="PNG")
        return
    if tuple(t.shape[-1:-3:-1]) != size:
        # scale back in float, before quantising, so no depth is lost on the way
        planes = Planes.from_array(t.detach().float().cpu().permute(1, 2, 0).numpy()).resize(size)
        t = torch.from_numpy(planes.array())
    arr = tensor_array(t, fmt)
    if suffix == ".tif":
        import tifffile

        if arr.shape[2] == 1:
            tifffile.imwrite(path, arr[:, :, 0], photometric="minisblack")
        else:  # one page, channels interleaved (YXS): read back as one N-channel image
            tifffile.imwrite(path, arr, photometric="rgb" if arr.shape[2] == 3 else "minisblack",
                             planarconfig="contig")
    else:
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path, format="PNG")


def domain_kind(files: Sequence[Path]) -> FileKind:
    """The kind all files of a folder share; one line naming two files when they differ.

    Classic 8-bit files count as one kind whatever their bands (grayscale and colour
    JPEGs mix, and are converted to the domain's channels, as before).
    """
    kinds = {}
    for path in files:
        kind = probe(path)
        key = ("classic",) if kind.classic else (kind.channels, kind.dtype)
        kinds.setdefault(key, (path, kind))
        if len(kinds) > 1:
            (p1, k1), (p2, k2) = list(kinds.values())[:2]
            raise DatasetError(f"folder {path.parent} mixes image kinds: {p1.name} is "
                               f"{'8-bit' if k1.classic else k1.describe()}, {p2.name} is "
                               f"{'8-bit' if k2.classic else k2.describe()}; convert them to one channel count "
                               "and depth")
    (_, kind), = kinds.values()
    return kind


def percentile_range(files: Sequence[Path], fmt: DomainFormat, percentiles: tuple[float, float],
                     max_values: int = 1_000_000) -> tuple[float, float]:
    """Intensity range from percentiles of the training images' raw values (all channels pooled).

    Each image contributes at most `max_values` values (an even stride), so memory stays
    bounded on large data sets; the result depends only on the files.
    """
    values = []
    for path in files:
        if fmt.dtype == "uint8" and probe(path).classic:
            arr = np.asarray(load_image(path, fmt.channels), dtype=np.float64).ravel()
        else:
            arr = read_array(path).astype(np.float64).ravel()
        step = max(1, arr.size // max_values)
        values.append(arr[::step])
    pooled = np.concatenate(values)
    low, high = np.percentile(pooled, percentiles)
    if not high > low:
        raise DatasetError(f"the {percentiles[0]}-{percentiles[1]} percentiles of the images in {files[0].parent} "
                           f"are both {low}; pass --intensity-range-a/-b MIN MAX instead")
    return float(low), float(high)
