"""Named FID/KID protocols: which translations, how many, against which real images, resized how.

Published horse2zebra numbers are measured in at least four ways, and the differences move FID
by several points, so a number is only comparable with numbers measured under the same protocol.
Each `Protocol` says exactly what is measured (docs/commands/evaluate.md has the table):

* the translations: the images of the source test folder, each once (`n_fake=None`), or the
  first `n_fake` of the sequence source[i % len(source)] (mmagic's 140 = 120 horses, 20 twice);
* the real images: the images of one or more folders of the target domain (test only, or
  train + test as GAN Compression's precomputed statistics);
* the resize to Inception's 299 x 299 input: TensorFlow 1 bilinear (no half-pixel offset, the
  TF graph's own pipeline, ours) or PyTorch bilinear (`F.interpolate`, align_corners=False, the
  pytorch-fid pipeline the CUT, mmagic and GAN Compression code bases use), with that pipeline's
  scaling to [-1, 1];
* the network: always the TF Inception 2015-12-05 pool_3 weights (pytorch-fid ports the same
  weights; its port is not bit-identical to the TF graph, so numbers measured here under `cut`
  and friends reproduce those protocols' choices of images and resize, on the TF graph).

KID (mean and std over 100 subsets) is reported under every protocol: with fewer images than
the 2048 feature dimensions FID is rank-deficient and biased by the set size, KID is not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from ..atomic import atomic_file
from ..data.images import DatasetError, list_images
from .fid_kid import FeatureStats, folder_fingerprint, frechet_distance, frechet_distance_from_features, kid
from .inception import FEATURE_DIM, INPUT_SIZE, _as_uint8_chw, _exact_cuda_math, load_inception, resolve_device

Resize = Literal["tf1", "torch"]


@dataclass(frozen=True)
class Protocol:
    """One way of measuring FID/KID of a translation direction (see the module docstring)."""

    name: str
    summary: str
    n_fake: int | None  # None: every source test image once; N: source[i % len] for i < N
    real_phases: tuple[str, ...]  # target-domain folders PHASE<X> whose images together are the real set
    resize: Resize
    published: str  # horse -> zebra numbers measured under it

    def fake_indices(self, n_source: int) -> list[int]:
        if n_source < 1:
            raise DatasetError("no source images to translate")
        n = n_source if self.n_fake is None else self.n_fake
        return [i % n_source for i in range(n)]

    def real_folders(self, root: Path, domain: str) -> list[Path]:
        return [Path(root) / f"{phase}{domain}" for phase in self.real_phases]


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("ours", "every source test image translated once vs every target test image; TF1 resize",
                 None, ("test",), "tf1", "this project's runs (docs/horse2zebra.md)"),
        Protocol("cut", "every source test image translated once (120 horses) vs the target test images "
                 "(140 zebras); PyTorch bilinear resize (pytorch-fid); CUT/DCLGAN/UNSB also pick the best "
                 "epoch on these test images", None, ("test",), "torch",
                 "CycleGAN trained by the CUT authors 77.2, CUT 45.5 (Park et al. 2020, Table 1)"),
        Protocol("mmagic", "140 translations: source test image i mod 120 for i < 140 (20 horses twice) vs "
                 "the 140 target test images; PyTorch bilinear resize", 140, ("test",), "torch",
                 "CycleGAN, the authors' released model, 62.1 (mmagic's model card)"),
        Protocol("gancomp", "every source test image translated once vs the target train + test images "
                 "(1334 + 140 zebras, GAN Compression's precomputed real statistics); PyTorch bilinear resize",
                 None, ("train", "test"), "torch",
                 "CycleGAN, the authors' released model, 65.75 (GAN Compression's evaluation)"),
    )
}
DEFAULT_PROTOCOL = "ours"


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        from ..config import ConfigError

        raise ConfigError(f"unknown --protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def _resize_torch(t: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's input pipeline: [0, 1] floats, bilinear (align_corners=False) to 299, then 2x - 1."""
    x = t.float()[None] / 255.0
    x = torch.nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0


def protocol_features(images: Sequence, resize: Resize = "tf1", batch_size: int = 50,
                      device: str | torch.device = "auto", model: torch.jit.ScriptModule | None = None) -> np.ndarray:
    """Inception pool_3 features (N, 2048) with the protocol's resize; images as `extract_features` takes them."""
    if resize == "tf1":
        from . import inception

        return inception.extract_features(list(images), batch_size=batch_size, device=device, progress=False,
                                          model=model)
    device = resolve_device(device)
    model = model if model is not None else load_inception(device)
    items = list(images)
    feats = np.empty((len(items), FEATURE_DIM), dtype=np.float64)
    with torch.inference_mode(), _exact_cuda_math(device):
        for start in range(0, len(items), batch_size):
            chunk = [_as_uint8_chw(item).to(device) for item in items[start:start + batch_size]]
            out = model(torch.cat([_resize_torch(t) for t in chunk]))
            if out.ndim > 2:
                out = out.flatten(2).mean(2)
            feats[start:start + len(chunk)] = out.double().cpu().numpy()
    return feats


def real_features(files: list[Path], resize: Resize, cache_dir: Path | None, batch_size: int = 50,
                  device: str = "auto") -> np.ndarray:
    """Features of the real images `files`, cached in `cache_dir` by their fingerprint and the resize."""
    if len(files) < 2:
        raise DatasetError(f"the real set has {len(files)} image(s); FID needs at least 2")
    cache_path = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{folder_fingerprint(files)}|{resize}|{len(files)}|"
                             f"{'|'.join(str(p.parent.resolve()) for p in files[:1] + files[-1:])}".encode()).hexdigest()
        cache_path = Path(cache_dir) / f"protocol-{resize}-{key[:24]}.npz"
        if cache_path.is_file():
            try:
                with np.load(cache_path, allow_pickle=False) as cached:
                    if str(cached["key"]) == key and cached["features"].ndim == 2 and len(cached["features"]) == len(files):
                        return cached["features"]
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: recompute
    feats = protocol_features(files, resize, batch_size, device)
    if cache_path is not None:
        with atomic_file(cache_path, "wb") as f:
            np.savez(f, features=feats, key=np.array(key))
    return feats


def scores_from_features(fake: np.ndarray, real: np.ndarray, fid_method: str = "sqrtm", kid_subsets: int = 100,
                         seed: int = 0) -> dict:
    """{"fid", "kid_mean", "kid_std", "n_fake", "n_real"} of two feature sets."""
    fake_stats = FeatureStats.from_features(fake, "the translations")
    real_stats = FeatureStats.from_features(real, "the real set")
    kid_mean, kid_std = kid(fake, real, n_subsets=kid_subsets, seed=seed)
    fid = (frechet_distance(fake_stats.mu, fake_stats.sigma, real_stats.mu, real_stats.sigma)
           if fid_method == "sqrtm" else frechet_distance_from_features(fake, real))
    return {"fid": fid, "kid_mean": kid_mean, "kid_std": kid_std, "n_fake": len(fake), "n_real": len(real)}


def real_files_for(protocol: Protocol, root: Path, domain: str) -> list[Path]:
    """Every image of the protocol's real folders of `domain` ("A" or "B") under `root`, in folder order."""
    files: list[Path] = []
    for folder in protocol.real_folders(root, domain):
        files += list_images(folder)  # DatasetError naming the folder when it is missing or empty
    return files


def folder_scores(fake_dir: str | Path, root: str | Path, protocol: Protocol, target: str = "B",
                  cache_dir: Path | None = None, batch_size: int = 50, device: str = "auto",
                  fid_method: str = "sqrtm") -> dict:
    """A folder of translations (in the order of their source test images) scored under `protocol`
    against the target domain's real images under `root`; the record names the protocol."""
    fakes = list_images(fake_dir)
    chosen = [fakes[i] for i in protocol.fake_indices(len(fakes))]
    fake = protocol_features(chosen, protocol.resize, batch_size, device)
    real = real_features(real_files_for(protocol, Path(root), target), protocol.resize, cache_dir, batch_size, device)
    return {**scores_from_features(fake, real, fid_method), "protocol": protocol.name}
