import dataclasses
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cyclegan.config import ConfigError, DataConfig
from cyclegan.data import (
    AlignedDataset,
    DatasetError,
    ImageFolderDataset,
    ImageLoadError,
    PairSampler,
    TransformParams,
    UnalignedDataset,
    apply_transform,
    build_train_dataset,
    cache_if_it_fits,
    sample_params,
    to_pil,
    transforms,
)

from conftest import SHARED_DATA, make_images


def _noise(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("mode, size, expected", [
    ("resize_and_crop", (50, 30), (16, 16)),
    ("crop", (50, 30), (16, 16)),
    ("scale_width", (40, 20), (20, 16)),   # height max(20 * 20/40, crop 16) = 16
    ("scale_width", (40, 80), (20, 40)),
    ("scale_width_and_crop", (40, 80), (16, 16)),
    ("scale_width_and_crop", (80, 20), (16, 16)),
    ("none", (41, 22), (40, 24)),          # each side to a multiple of 4 (round half to even)
    ("none", (2, 3), (4, 4)),              # never below one step of 4
])
def test_preprocess_modes(mode, size, expected):
    cfg = DataConfig(preprocess=mode, load_size=20, crop_size=16)
    img = _noise(*size)
    for seed in range(4):
        out = apply_transform(img, sample_params(img.size, cfg, random.Random(seed)), cfg)
        assert out.size == expected and out.mode == "RGB"


def test_resize_and_crop_is_bicubic_resize_then_crop():
    cfg = DataConfig(load_size=20, crop_size=16, flip=False)
    img = _noise(50, 30)
    params = TransformParams(3, 1, False)
    expected = img.resize((20, 20), Image.Resampling.BICUBIC).crop((3, 1, 19, 17))
    assert np.array_equal(np.asarray(apply_transform(img, params, cfg)), np.asarray(expected))
    flipped = apply_transform(img, TransformParams(3, 1, True), cfg)
    assert np.array_equal(np.asarray(flipped), np.asarray(expected)[:, ::-1])


def test_params_draw_like_the_authors_get_params():
    # The authors' get_params with the global `random` seeded the same way.
    cfg = DataConfig(load_size=30, crop_size=16)
    for seed in range(20):
        random.seed(seed)
        x, y = random.randint(0, 30 - 16), random.randint(0, 30 - 16)
        flip = random.random() > 0.5
        assert sample_params((50, 40), cfg, random.Random(seed)) == TransformParams(x, y, flip)


def test_crop_offsets_cover_the_whole_range():
    cfg = DataConfig(preprocess="crop", crop_size=16)
    xs = {sample_params((20, 18), cfg, random.Random(s)).crop_x for s in range(200)}
    assert xs == set(range(5))


def test_image_smaller_than_the_crop_is_scaled_up():
    cfg = DataConfig(preprocess="crop", crop_size=16)
    img = _noise(10, 30)
    ys = set()
    for seed in range(100):
        params = sample_params(img.size, cfg, random.Random(seed))
        ys.add(params.crop_y)
        assert apply_transform(img, params, cfg).size == (16, 16)
    # Offsets are drawn in the scaled-up 16 x 48 image, not in the original 30 px height.
    assert ys <= set(range(48 - 16 + 1)) and max(ys) > 30 - 16
    small_load = DataConfig(load_size=10, crop_size=16)  # load < crop (an unvalidated config)
    assert apply_transform(img, sample_params(img.size, small_load, random.Random(0)), small_load).size == (16, 16)


def test_flip_and_crop_follow_the_seed():
    cfg = DataConfig(load_size=20, crop_size=16)
    img = _noise(20, 20)
    outs = [np.asarray(apply_transform(img, sample_params(img.size, cfg, random.Random(s)), cfg)) for s in range(8)]
    again = [np.asarray(apply_transform(img, sample_params(img.size, cfg, random.Random(s)), cfg)) for s in range(8)]
    assert all(np.array_equal(a, b) for a, b in zip(outs, again))
    flips = [sample_params((20, 20), cfg, random.Random(s)).flip for s in range(50)]
    assert 10 < sum(flips) < 40
    no_flip = dataclasses.replace(cfg, flip=False)
    assert not any(sample_params((20, 20), no_flip, random.Random(s)).flip for s in range(50))


def test_test_transform_is_a_centre_crop_without_flip():
    cfg = DataConfig(load_size=20, crop_size=16)
    img = _noise(30, 30)
    out = transforms.test_transform(img, cfg)
    expected = img.resize((20, 20), Image.Resampling.BICUBIC).crop((2, 2, 18, 18))
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert transforms.test_transform.__test__ is False  # pytest must not collect it


# ---------------------------------------------------------------- sampler


def test_sampler_is_a_function_of_seed_and_epoch():
    s = PairSampler(5, 7, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert len(full) == 7 and len(s) == 7
    assert {a for a, _, _ in full} == set(range(5))  # A cycles when smaller
    assert all(0 <= b < 7 and 0 <= seed < 2**31 for _, b, seed in full)
    again = PairSampler(5, 7, seed=3)
    again.set_epoch(2)
    assert list(again) == full
    s.set_epoch(3)
    assert list(s) != full
    assert list(PairSampler(5, 7, seed=4).plan(2)) != full
    big = PairSampler(3, 2, seed=10**30)  # any int seed is accepted
    assert len(list(big)) == 3


def test_sampler_resumes_mid_epoch_exactly():
    s = PairSampler(9, 4, seed=7)
    s.set_epoch(5)
    full = list(s)
    for start in (0, 1, 6, 9):
        resumed = PairSampler(9, 4, seed=7)
        resumed.set_epoch(5, start=start)
        assert list(resumed) == full[start:] and len(resumed) == 9 - start
    with pytest.raises(ValueError, match="start"):
        s.set_epoch(5, start=10)


def test_serial_sampler_goes_in_order():
    serial = PairSampler(3, 4, seed=0, serial=True).plan(1)
    assert [(a, b) for a, b, _ in serial] == [(0, 0), (1, 1), (2, 2), (0, 3)]


# ---------------------------------------------------------------- unaligned


def test_unaligned_dataset(unaligned_root):
    cfg = DataConfig(load_size=24, crop_size=20)
    ds = UnalignedDataset(unaligned_root, cfg, 3, 3)
    assert (ds.len_a, ds.len_b, len(ds)) == (5, 7, 7)  # epoch length = the larger domain
    item = ds[(1, 6, 123)]
    assert item["a"].shape == (3, 20, 20) and item["b"].shape == (3, 20, 20)
    assert item["path_a"].endswith("trainA/img_001.png") and item["path_b"].endswith("trainB/img_006.png")
    assert torch.equal(ds[(1, 6, 5)]["a"], ds[(1, 6, 5)]["a"])
    limited = UnalignedDataset(unaligned_root, dataclasses.replace(cfg, max_dataset_size=2), 3, 3)
    assert (limited.len_a, limited.len_b, len(limited)) == (2, 2, 2)
    test = UnalignedDataset(unaligned_root, cfg, 3, 3, phase="test")
    assert test[(0, 0, 0)]["path_a"].endswith("testA/img_000.png")


def test_a_and_b_get_independent_params(unaligned_root):
    cfg = DataConfig(preprocess="crop", crop_size=8)
    ds = UnalignedDataset(unaligned_root, cfg, 3, 3)
    rng = random.Random(42)
    pa, pb = sample_params((20, 20), cfg, rng), sample_params((20, 20), cfg, rng)
    item = ds[(0, 0, 42)]
    expected_a = apply_transform(Image.open(ds.files_a[0]).convert("RGB"), pa, cfg)
    expected_b = apply_transform(Image.open(ds.files_b[0]).convert("RGB"), pb, cfg)
    assert np.array_equal(np.asarray(to_pil(item["a"])), np.asarray(expected_a))
    assert np.array_equal(np.asarray(to_pil(item["b"])), np.asarray(expected_b))


def test_direction_b_to_a_swaps_domains(unaligned_root):
    cfg = DataConfig(load_size=24, crop_size=20, direction="BtoA")
    ds = UnalignedDataset(unaligned_root, cfg, 3, 3)
    assert (ds.len_a, ds.len_b) == (7, 5)
    item = ds[(6, 4, 0)]
    assert item["path_a"].endswith("trainB/img_006.png") and item["path_b"].endswith("trainA/img_004.png")


def test_grayscale_domain(unaligned_root):
    ds = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 1)
    item = ds[(0, 0, 0)]
    assert item["a"].shape == (3, 20, 20) and item["b"].shape == (1, 20, 20)


def test_missing_domain_folder(tmp_path):
    make_images(tmp_path / "trainA", 1)
    with pytest.raises(DatasetError, match="trainB does not exist"):
        UnalignedDataset(tmp_path, DataConfig(), 3, 3)


# ---------------------------------------------------------------- aligned


def _aligned_root(tmp_path, width=40, count=3):
    """A|B images whose two halves are equal (plus one extra column when width is odd)."""
    root = tmp_path / "aligned"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        half = rng.integers(0, 256, (20, width // 2, 3), dtype=np.uint8)
        extra = [np.zeros((20, 1, 3), np.uint8)] if width % 2 else []
        Image.fromarray(np.concatenate([half, half] + extra, axis=1)).save(root / "train" / f"{i}.png")
    return root


def test_aligned_paired_uses_one_crop_for_both_halves(tmp_path):
    cfg = DataConfig(dataset_mode="aligned", paired=True, load_size=18, crop_size=16)
    ds = build_train_dataset(cfg, _aligned_root(tmp_path, width=41), 3, 3)  # odd width too
    assert isinstance(ds, AlignedDataset) and (ds.len_a, ds.len_b, len(ds)) == (3, 3, 3)
    for seed in range(6):
        item = ds[(1, 2, seed)]  # index_b is ignored when paired
        assert item["a"].shape == (3, 16, 16)
        assert torch.equal(item["a"], item["b"]) and item["path_a"] == item["path_b"]


def test_aligned_halves_and_direction(tmp_path):
    root = tmp_path / "ab"
    (root / "train").mkdir(parents=True)
    Image.new("RGB", (10, 4), (255, 0, 0)).save(root / "train" / "0.png")
    img = Image.open(root / "train" / "0.png").convert("RGB")
    img.paste((0, 0, 255), (5, 0, 10, 4))  # left red, right blue
    img.save(root / "train" / "0.png")
    cfg = DataConfig(dataset_mode="aligned", paired=True, preprocess="none", flip=False)
    item = AlignedDataset(root, cfg, 3, 3)[(0, 0, 0)]
    assert item["a"].shape == (3, 4, 4)  # 5 px half -> multiple of 4
    assert item["a"][0].mean() > 0.9 and item["b"][2].mean() > 0.9  # A red (left), B blue (right)
    swapped = AlignedDataset(root, dataclasses.replace(cfg, direction="BtoA"), 3, 1)[(0, 0, 0)]
    assert swapped["a"][2].mean() > 0.9 and swapped["b"].shape == (1, 4, 4)


def test_aligned_unpaired_takes_b_elsewhere(tmp_path):
    cfg = DataConfig(dataset_mode="aligned", load_size=18, crop_size=16, flip=False)
    root = _aligned_root(tmp_path)
    ds = AlignedDataset(root, cfg, 3, 3)
    item = ds[(0, 2, 0)]
    assert item["path_a"].endswith("0.png") and item["path_b"].endswith("2.png")
    rng = random.Random(0)
    pa, pb = sample_params((20, 20), cfg, rng), sample_params((20, 20), cfg, rng)
    right = Image.open(root / "train" / "2.png").convert("RGB").crop((20, 0, 40, 20))
    assert np.array_equal(np.asarray(to_pil(item["b"])), np.asarray(apply_transform(right, pb, cfg)))
    assert pa != pb
    with pytest.raises(DatasetError, match="--paired"):
        build_train_dataset(DataConfig(paired=True), tmp_path, 3, 3)


# ---------------------------------------------------------------- bad files


def test_bad_file_error_or_skip(unaligned_root):
    (unaligned_root / "trainA" / "zero.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"zero\.jpg.*--on-bad-image skip"):
        UnalignedDataset(unaligned_root, DataConfig(), 3, 3)
    with pytest.warns(UserWarning, match="zero.jpg"):
        ds = UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip"), 3, 3)
    assert ds.len_a == 5 and all(p.name != "zero.jpg" for p in ds.files_a)


def test_domain_with_only_bad_files(tmp_path):
    make_images(tmp_path / "trainB", 1)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "bad.png").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="bad.png"), pytest.raises(DatasetError, match="trainA has no readable"):
        UnalignedDataset(tmp_path, DataConfig(on_bad_image="skip"), 3, 3)


def test_truncated_file_skipped_at_load_time(unaligned_root):
    path = unaligned_root / "trainA" / "img_000.png"
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixels cut
    ds = UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip", load_size=24, crop_size=20), 3, 3)
    with pytest.warns(UserWarning, match="img_000.png"):
        item = ds[(0, 0, 0)]
    assert item["path_a"].endswith("img_001.png")  # the next index, deterministically
    strict = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    with pytest.raises(ImageLoadError, match="img_000.png"):
        strict[(0, 0, 0)]


# ---------------------------------------------------------------- loading


def test_workers_load_the_same_batches(unaligned_root):
    ds = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    runs = []
    for workers in (0, 2):
        sampler = PairSampler(ds.len_a, ds.len_b, seed=1)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 4
    for x, y in zip(*runs):
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"]) and x["path_b"] == y["path_b"]


# ---------------------------------------------------------------- decoded-image cache


def _all_items(ds, n=12):
    return [ds[(i % ds.len_a, (3 * i) % ds.len_b, i)] for i in range(n)]


def _same_items(xs, ys):
    return all(torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"]) and x["path_a"] == y["path_a"]
               and x["path_b"] == y["path_b"] for x, y in zip(xs, ys))


@pytest.mark.parametrize("cfg, channels", [
    (DataConfig(load_size=24, crop_size=20), (3, 3)),
    (DataConfig(load_size=12, crop_size=16), (3, 1)),  # load below the crop: scaled up
    (DataConfig(preprocess="scale_width_and_crop", load_size=22, crop_size=16), (1, 3)),
    (DataConfig(preprocess="none", direction="BtoA"), (3, 3)),
])
def test_cached_items_equal_uncached(tmp_path, cfg, channels):
    make_images(tmp_path / "trainA", 4, size=(30, 21), seed=3)
    make_images(tmp_path / "trainB", 5, size=(19, 26), seed=4)
    plain, cached = UnalignedDataset(tmp_path, cfg, *channels), UnalignedDataset(tmp_path, cfg, *channels)
    cached.preload()
    assert cached.cached and not plain.cached
    assert _same_items(_all_items(plain), _all_items(cached))


@pytest.mark.parametrize("paired, direction, channels", [(True, "AtoB", (3, 3)), (False, "BtoA", (1, 3))])
def test_cached_aligned_items_equal_uncached(tmp_path, paired, direction, channels):
    cfg = DataConfig(dataset_mode="aligned", paired=paired, direction=direction, load_size=18, crop_size=16)
    root = _aligned_root(tmp_path, width=41)
    plain, cached = AlignedDataset(root, cfg, *channels), AlignedDataset(root, cfg, *channels)
    cached.preload()
    assert _same_items(_all_items(plain), _all_items(cached))


def test_cache_keeps_the_skip_of_a_truncated_file(unaligned_root):
    path = unaligned_root / "trainA" / "img_000.png"
    path.write_bytes(path.read_bytes()[:200])
    ds = UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip", load_size=24, crop_size=20), 3, 3)
    ds.preload()  # the error is kept, not raised
    with pytest.warns(UserWarning, match="img_000.png"):
        assert ds[(0, 0, 0)]["path_a"].endswith("img_001.png")
    strict = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    strict.preload()
    with pytest.raises(ImageLoadError, match="img_000.png"):
        strict[(0, 0, 0)]


def test_cache_is_shared_with_workers(unaligned_root):
    ds = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    plain = [ds[item] for item in PairSampler(ds.len_a, ds.len_b, seed=1).plan(1)]
    ds.preload()
    for path in ds.files_a + ds.files_b:
        path.unlink()  # the files are gone: items can only come from the cache
    sampler = PairSampler(ds.len_a, ds.len_b, seed=1)
    loaded = [b for batch in DataLoader(ds, batch_size=1, sampler=sampler, num_workers=2) for b in [batch]]
    assert len(loaded) == len(plain)
    assert all(torch.equal(x["a"], y["a"][0]) and torch.equal(x["b"], y["b"][0]) for x, y in zip(plain, loaded))


def test_cache_mode_and_memory(unaligned_root, monkeypatch):
    from cyclegan.data import datasets

    cfg = DataConfig(load_size=24, crop_size=20)
    ds = UnalignedDataset(unaligned_root, cfg, 3, 1)
    assert ds.cache_bytes() == 24 * 24 * (5 * 3 + 7 * 1)  # resized sizes, not file sizes
    assert cache_if_it_fits(ds, "off") == 0 and not ds.cached
    monkeypatch.setattr(datasets, "available_memory", lambda: 4 * ds.cache_bytes() - 1)
    assert cache_if_it_fits(ds, "auto") == 0 and not ds.cached  # more than a quarter
    assert cache_if_it_fits(ds, "auto", copies=0) == ds.cache_bytes() and ds.cached
    small = UnalignedDataset(unaligned_root, cfg, 3, 1)
    monkeypatch.setattr(datasets, "available_memory", lambda: 1000)
    with pytest.raises(ConfigError, match="--cache-images off"):
        cache_if_it_fits(small, "on")
    monkeypatch.setattr(datasets, "available_memory", lambda: 10**9)
    assert cache_if_it_fits(small, "on") > 0 and small.cached


def test_image_folder_dataset_keeps_sizes(tmp_path):
    paths = make_images(tmp_path / "in", 1, size=(13, 7)) + make_images(tmp_path / "in2", 1, size=(5, 9))
    ds = ImageFolderDataset(paths, 1)
    assert len(ds) == 2 and ds[0]["image"].shape == (1, 7, 13) and ds[1]["image"].shape == (1, 9, 5)
    assert ds[1]["path"] == str(paths[1])


@pytest.mark.skipif(not (SHARED_DATA / "horse2zebra").is_dir(), reason="shared horse2zebra data not present")
def test_real_horse2zebra_with_grayscale_zebras():
    ds = UnalignedDataset(SHARED_DATA / "horse2zebra", DataConfig(load_size=72, crop_size=64), 3, 3)
    assert (ds.len_a, ds.len_b, len(ds)) == (1067, 1334, 1334)
    gray = [i for i, p in enumerate(ds.files_b) if Image.open(p).mode == "L"]
    assert len(gray) == 7
    item = ds[(0, gray[0], 0)]
    assert item["b"].shape == (3, 64, 64) and item["a"].shape == (3, 64, 64)
    assert torch.equal(item["b"][0], item["b"][1])  # grey replicated into R, G, B
