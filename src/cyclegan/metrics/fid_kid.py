"""Fréchet Inception Distance and Kernel Inception Distance between two image folders.

FID (Heusel et al. 2017): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) of the Gaussians fitted
to the Inception pool_3 features. KID (Bińkowski et al. 2018): unbiased MMD^2 with the kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets; unlike FID it is unbiased for small sets,
which suits the 120/140-image test splits of horse2zebra.

Features of a real (reference) folder can be cached in `cache_dir` as .npz, keyed by a hash of
the folder's sorted file names, sizes and modification times, so evaluating many checkpoints
against the same real set runs the network on it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from .. import smoke
from ..data.images import DatasetError, list_images
from .inception import FEATURE_DIM, extract_features, inception_weights_path

# Bump when the feature pipeline changes (resize, scaling, weights): old cache files stop matching.
FEATURE_PIPELINE = "tf-inception-2015-12-05/pool3/tf1-bilinear-299/v1"


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """FID between N(mu1, sigma1) and N(mu2, sigma2), via scipy.linalg.sqrtm(sigma1 @ sigma2).

    When the product is singular enough that sqrtm returns non-finite values, eps is added to both
    diagonals and the root taken again. Imaginary parts from rounding are dropped; a large one
    (the covariances are not positive semi-definite) is an error.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mean/covariance shapes do not match: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3 * max(1.0, np.abs(np.diagonal(covmean).real).max()):
            raise ValueError(f"FID: matrix square root has an imaginary component of {imag:.3g}; "
                             "the covariances are not positive semi-definite")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_eig(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """FID by an independent route: Tr((S1 S2)^(1/2)) = sum of sqrt(eigenvalues of S1^(1/2) S2 S1^(1/2)),
    a symmetric PSD matrix (similar to S1 S2), so only symmetric eigendecompositions are needed."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance_from_features(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID straight from two feature sets, exactly and fast (no d x d matrix root).

    With centred features A1 (n1 x d), A2 (n2 x d) and S_i = A_i^T A_i / (n_i - 1), the non-zero
    eigenvalues of S1 S2 are those of C C^T with C = A1 A2^T / sqrt((n1 - 1)(n2 - 1)), so
    Tr((S1 S2)^(1/2)) is the sum of C's singular values. That costs O(n1 n2 min(n1, n2)) instead of
    O(d^3); when the sets are large enough for that to lose, the eigenvalue route is used instead.
    """
    f1, f2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"FID needs two (N, d) feature arrays of equal d, got {f1.shape} and {f2.shape}")
    n1, n2, d = len(f1), len(f2), f1.shape[1]
    if min(n1, n2) < 2:
        raise ValueError(f"FID needs at least 2 samples in each set, got {n1} and {n2}")
    if n1 * n2 * min(n1, n2) > d ** 3:
        return frechet_distance_eig(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a1, a2 = f1 - mu1, f2 - mu2
    tr1 = float((a1 * a1).sum()) / (n1 - 1)
    tr2 = float((a2 * a2).sum()) / (n2 - 1)
    cross = (a1 @ a2.T) / np.sqrt((n1 - 1) * (n2 - 1))
    nuclear = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * nuclear)


KID_PRECOMPUTE_MAX = 5000  # images in both sets together


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(feats1: np.ndarray, feats2: np.ndarray, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID as (mean, std) over `n_subsets` subsets of `subset_size` rows drawn without replacement
    from each set (subset_size is clipped to the smaller set). Each subset gives the unbiased MMD^2
    estimate (off-diagonal means of k(x, x') and k(y, y') minus twice the mean of k(x, y)); std is
    the population std over subsets (0 with one subset)."""
    f1, f2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"KID needs two (N, d) feature arrays of equal d, got {f1.shape} and {f2.shape}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be at least 1, got {n_subsets}")
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {len(f1)} and {len(f2)}")
    rng = np.random.default_rng(seed)
    # All kernel values at once when they fit (about 200 MB at most): each subset then only indexes
    # them, instead of recomputing three m x m x d products per subset.
    whole = len(f1) + len(f2) <= KID_PRECOMPUTE_MAX
    if whole:
        k11, k22, k12 = polynomial_kernel(f1, f1), polynomial_kernel(f2, f2), polynomial_kernel(f1, f2)
    scores = np.empty(n_subsets)
    for i in range(n_subsets):
        ix = rng.choice(len(f1), m, replace=False)
        iy = rng.choice(len(f2), m, replace=False)
        if whole:
            kxx, kyy, kxy = k11[np.ix_(ix, ix)], k22[np.ix_(iy, iy)], k12[np.ix_(ix, iy)]
        else:
            x, y = f1[ix], f2[iy]
            kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        scores[i] = within - 2.0 * kxy.mean()
    return float(scores.mean()), float(scores.std())


@dataclass
class FeatureStats:
    """Inception features of an image set and their Gaussian fit."""

    features: np.ndarray  # (N, 2048) float64
    mu: np.ndarray  # (2048,)
    sigma: np.ndarray  # (2048, 2048)

    @classmethod
    def from_features(cls, features: np.ndarray, source: str = "image set") -> "FeatureStats":
        features = np.asarray(features, np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be (N, d), got shape {features.shape}")
        if len(features) < 2:
            raise DatasetError(f"{source} has {len(features)} image(s); FID needs at least 2 "
                               "(a covariance from one sample is undefined)")
        return cls(features, features.mean(axis=0), np.cov(features, rowvar=False))

    def __len__(self) -> int:
        return len(self.features)


def folder_fingerprint(files: list[Path]) -> str:
    """Hash of the sorted file names, sizes and mtimes, plus the feature pipeline and weights."""
    h = hashlib.sha256(FEATURE_PIPELINE.encode())
    try:
        weights = inception_weights_path().stat()
        h.update(f"|weights:{weights.st_size}".encode())
    except Exception:  # noqa: BLE001 - the key just lacks it; extraction will raise the real error
        pass
    for path in sorted(files, key=lambda p: p.name):
        try:
            st = path.stat()
            h.update(f"|{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:  # broken link: reading it will raise ImageLoadError naming the file
            h.update(f"|{path.name}:missing".encode())
    return h.hexdigest()


def _cache_file(cache_dir: Path, folder: Path, key: str) -> Path:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (folder.resolve().name or "root"))
    return cache_dir / f"{name}-{key[:20]}.npz"


def stats_for_folder(folder: str | Path, cache_dir: str | Path | None = None, batch_size: int = 50,
                     device: str = "auto", progress: bool = True) -> FeatureStats:
    """Features of every image directly inside `folder` (sorted by name).

    With `cache_dir`, the features are stored there as `<folder>-<hash>.npz` and reused while no file
    in the folder is added, removed, resized or touched; a second call then skips the network.
    """
    folder = Path(folder)
    files = list_images(folder)  # DatasetError when missing or empty
    if len(files) < 2:
        raise DatasetError(f"folder {folder} has {len(files)} image; FID needs at least 2 "
                           "(a covariance from one sample is undefined)")
    cache_path = None
    if cache_dir is not None:
        key = folder_fingerprint(files)
        cache_path = _cache_file(Path(cache_dir), folder, key)
        if cache_path.is_file():
            try:
                with np.load(cache_path, allow_pickle=False) as cached:
                    if str(cached["key"]) == key and cached["features"].shape == (len(files), FEATURE_DIM):
                        return FeatureStats.from_features(cached["features"], source=f"folder {folder}")
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale cache: recompute and overwrite
    feats = extract_features(files, batch_size=batch_size, device=device, progress=progress)
    stats = FeatureStats.from_features(feats, source=f"folder {folder}")
    if cache_path is not None:
        with atomic_file(cache_path, "wb") as f:
            np.savez(f, features=feats, key=np.array(key))
    return stats


FID_METHODS = ("sqrtm", "fast")


def fid_kid(fake_dir: str | Path, real_dir: str | Path, cache_dir: str | Path | None = None, batch_size: int = 50,
            device: str = "auto", progress: bool = True, kid_subsets: int = 100, kid_subset_size: int = 1000,
            seed: int = 0, fid_method: str = "sqrtm") -> dict:
    """FID and KID of the images in `fake_dir` against those in `real_dir`.

    Only the real folder's features are cached (in `cache_dir`, when given): fakes change every run.
    fid_method "sqrtm" is the reference route (scipy.linalg.sqrtm, as pytorch-fid and the TTUR code);
    "fast" computes the same quantity exactly via frechet_distance_from_features (agrees to ~1e-7
    relative; a 2048 x 2048 sqrtm takes tens of seconds on a small CPU, the fast route well under one).
    Returns {"fid", "kid_mean", "kid_std", "n_fake", "n_real"}.
    """
    if fid_method not in FID_METHODS:
        raise ValueError(f"fid_method must be one of {', '.join(FID_METHODS)}, got {fid_method!r}")
    fid_method = smoke.fid_method(fid_method)  # CYCLEGAN_SMOKE: no minute-long matrix square root
    fake = stats_for_folder(fake_dir, cache_dir=None, batch_size=batch_size, device=device, progress=progress)
    real = stats_for_folder(real_dir, cache_dir=cache_dir, batch_size=batch_size, device=device, progress=progress)
    kid_mean, kid_std = kid(fake.features, real.features, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {
        "fid": (frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma) if fid_method == "sqrtm"
                else frechet_distance_from_features(fake.features, real.features)),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "n_fake": len(fake),
        "n_real": len(real),
    }
