import dataclasses
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cyclegan.config import DataConfig
from cyclegan.data import (
    AlignedDataset,
    PairSampler,
    UnalignedDataset,
    apply_transform,
    build_train_dataset,
    eval_transform,
    sample_params,
)
from cyclegan.data.images import DatasetError, ImageLoadError

from conftest import SHARED_DATA, make_images


@pytest.mark.parametrize("mode, size, expected", [
    ("resize_and_crop", (50, 30), (16, 16)),
    ("crop", (50, 30), (16, 16)),
    ("scale_width", (40, 20), (20, 16)),   # height max(20 * 20/40, crop 16) = 16
    ("scale_width", (40, 80), (20, 40)),
    ("scale_width_and_crop", (40, 80), (16, 16)),
    ("none", (41, 22), (40, 24)),          # each side to a multiple of 4
])
def test_preprocess_modes(mode, size, expected):
    cfg = DataConfig(preprocess=mode, load_size=20, crop_size=16)
    img = Image.new("RGB", size)
    out = apply_transform(img, sample_params(img.size, cfg, random.Random(0)), cfg)
    assert out.size == expected


def test_crop_smaller_image_is_scaled_up():
    cfg = DataConfig(preprocess="crop", crop_size=16)
    img = Image.new("RGB", (10, 30))
    assert apply_transform(img, sample_params(img.size, cfg, random.Random(0)), cfg).size == (16, 16)


def test_flip_and_crop_follow_the_seed():
    cfg = DataConfig(load_size=20, crop_size=16)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8))
    outs = [np.asarray(apply_transform(img, sample_params(img.size, cfg, random.Random(s)), cfg)) for s in range(8)]
    again = [np.asarray(apply_transform(img, sample_params(img.size, cfg, random.Random(s)), cfg)) for s in range(8)]
    assert all(np.array_equal(a, b) for a, b in zip(outs, again))
    flips = [sample_params((20, 20), cfg, random.Random(s)).flip for s in range(50)]
    assert 10 < sum(flips) < 40
    no_flip = dataclasses.replace(cfg, flip=False)
    assert not any(sample_params((20, 20), no_flip, random.Random(s)).flip for s in range(50))
    assert eval_transform(img, cfg).size == (16, 16)


def test_sampler_is_a_function_of_seed_and_epoch():
    s = PairSampler(5, 7, seed=3)
    s.set_epoch(2)
    full = list(s)
    assert len(full) == 7 and len(s) == 7
    assert {a for a, _, _ in full} == set(range(5))  # A cycles when smaller
    assert all(0 <= b < 7 for _, b, _ in full)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:] and len(s) == 3
    s.set_epoch(3)
    assert list(s) != full
    assert list(PairSampler(5, 7, seed=3).plan(2)) == full
    serial = PairSampler(3, 4, seed=0, serial=True).plan(1)
    assert [(a, b) for a, b, _ in serial] == [(0, 0), (1, 1), (2, 2), (0, 3)]


def test_unaligned_dataset(unaligned_root):
    cfg = DataConfig(load_size=24, crop_size=20)
    ds = UnalignedDataset(unaligned_root, cfg, 3, 1)
    assert (ds.len_a, ds.len_b, len(ds)) == (5, 7, 7)
    item = ds[(1, 6, 123)]
    assert item["a"].shape == (3, 20, 20) and item["b"].shape == (1, 20, 20)
    assert item["path_a"].endswith("trainA/img_001.png")
    swapped = UnalignedDataset(unaligned_root, dataclasses.replace(cfg, direction="BtoA"), 3, 3)
    assert (swapped.len_a, swapped.len_b) == (7, 5)
    assert torch.equal(ds[(1, 6, 5)]["a"], ds[(1, 6, 5)]["a"])
    limited = UnalignedDataset(unaligned_root, dataclasses.replace(cfg, max_dataset_size=2), 3, 3)
    assert len(limited) == 2


def _aligned_root(tmp_path, width=40):
    root = tmp_path / "aligned"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        half = rng.integers(0, 255, (20, width // 2, 3), dtype=np.uint8)
        full = np.concatenate([half, half] + ([half[:, :1]] if width % 2 else []), axis=1)
        Image.fromarray(full).save(root / "train" / f"{i}.png")
    return root


def test_aligned_paired_uses_one_crop_for_both_halves(tmp_path):
    cfg = DataConfig(dataset_mode="aligned", paired=True, load_size=18, crop_size=16)
    ds = build_train_dataset(cfg, _aligned_root(tmp_path, width=41), 3, 3)  # odd width too
    for seed in range(5):
        item = ds[(1, 2, seed)]
        assert torch.equal(item["a"], item["b"]) and item["path_a"] == item["path_b"]


def test_aligned_unpaired_takes_b_elsewhere(tmp_path):
    cfg = DataConfig(dataset_mode="aligned", load_size=18, crop_size=16, flip=False)
    ds = AlignedDataset(_aligned_root(tmp_path), cfg, 3, 3)
    item = ds[(0, 2, 0)]
    assert item["path_a"].endswith("0.png") and item["path_b"].endswith("2.png")
    with pytest.raises(DatasetError, match="--paired"):
        build_train_dataset(DataConfig(paired=True), tmp_path, 3, 3)


def test_bad_file_error_or_skip(unaligned_root):
    (unaligned_root / "trainA" / "zero.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="zero.jpg"):
        UnalignedDataset(unaligned_root, DataConfig(), 3, 3)
    with pytest.warns(UserWarning, match="zero.jpg"):
        ds = UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip"), 3, 3)
    assert ds.len_a == 5


def test_truncated_file_skipped_at_load_time(unaligned_root):
    path = unaligned_root / "trainA" / "img_000.png"
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixels cut
    ds = UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip", load_size=24, crop_size=20), 3, 3)
    with pytest.warns(UserWarning, match="img_000.png"):
        item = ds[(0, 0, 0)]
    assert item["path_a"].endswith("img_001.png")
    strict = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    with pytest.raises(ImageLoadError, match="img_000.png"):
        strict[(0, 0, 0)]


def test_workers_load_the_same_batches(unaligned_root):
    ds = UnalignedDataset(unaligned_root, DataConfig(load_size=24, crop_size=20), 3, 3)
    batches = []
    for workers in (0, 2):
        sampler = PairSampler(ds.len_a, ds.len_b, seed=1)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=2, sampler=sampler, num_workers=workers)
        batches.append([b["a"] for b in loader])
    assert all(torch.equal(x, y) for x, y in zip(*batches))


@pytest.mark.skipif(not (SHARED_DATA / "horse2zebra").is_dir(), reason="shared horse2zebra data not present")
def test_real_horse2zebra_with_grayscale_zebras():
    ds = UnalignedDataset(SHARED_DATA / "horse2zebra", DataConfig(load_size=72, crop_size=64), 3, 3)
    assert (ds.len_a, ds.len_b) == (1067, 1334)
    gray = [i for i, p in enumerate(ds.files_b) if Image.open(p).mode == "L"]
    assert len(gray) == 7
    item = ds[(0, gray[0], 0)]
    assert item["b"].shape == (3, 64, 64)
