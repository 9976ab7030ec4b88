"""The report's toy data sets (scripts/toy_data.py): layout, content, determinism, shape descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan import DataConfig
from cyclegan.data import UnalignedDataset
from toy_data import (
    chroma, classify_shape, make_colour_grey_dataset, make_shapes_dataset, shape_stats,
)


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def _array(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


# ---------------------------------------------------------------- shapes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), n_train=40, n_test=10, size=16, seed=3)


def test_shapes_layout_counts_and_binary(shapes):
    counts = {split: len(_pngs(shapes / split)) for split in ("trainA", "trainB", "testA", "testB")}
    assert counts == {"trainA": 40, "trainB": 40, "testA": 10, "testB": 10}
    for path in _pngs(shapes / "trainA") + _pngs(shapes / "testB"):
        arr = _array(path)
        assert arr.shape == (16, 16)
        assert set(np.unique(arr)) == {0, 255}


def test_shapes_are_what_their_domain_says(shapes):
    # fill ratio: ~pi/4 for a circle, 1 for a square; the classifier agrees on every image
    circles = [shape_stats(_array(p)) for p in _pngs(shapes / "trainA") + _pngs(shapes / "testA")]
    squares = [shape_stats(_array(p)) for p in _pngs(shapes / "trainB") + _pngs(shapes / "testB")]
    assert all(s["fill"] == 1.0 for s in squares)
    assert max(s["fill"] for s in circles) < 0.9
    assert 0.7 < np.mean([s["fill"] for s in circles]) < 0.85
    assert {classify_shape(s) for s in circles} == {"circle"}
    assert {classify_shape(s) for s in squares} == {"square"}


def test_shapes_vary_and_test_never_repeats_train(shapes):
    for domain in "AB":
        train = {_array(p).tobytes() for p in _pngs(shapes / f"train{domain}")}
        test = {_array(p).tobytes() for p in _pngs(shapes / f"test{domain}")}
        assert len(train) == 40 and len(test) == 10  # all distinct
        assert not train & test
        extents = {shape_stats(_array(p))["extent"] for p in _pngs(shapes / f"train{domain}")}
        assert len(extents) > 3  # random sizes


def test_shapes_deterministic(tmp_path, shapes):
    again = make_shapes_dataset(tmp_path / "again", n_train=40, n_test=10, size=16, seed=3)
    other = make_shapes_dataset(tmp_path / "other", n_train=40, n_test=10, size=16, seed=4)
    for split in ("trainA", "testB"):
        first = [p.read_bytes() for p in _pngs(shapes / split)]
        assert first == [p.read_bytes() for p in _pngs(again / split)]
        assert first != [p.read_bytes() for p in _pngs(other / split)]


def test_shapes_load_with_the_training_dataset(shapes):
    cfg = DataConfig(dataroot=str(shapes), load_size=16, crop_size=16, num_workers=0)
    item = UnalignedDataset(shapes, cfg, 1, 1)[(0, 1, 0)]
    assert item["a"].shape == (1, 16, 16) and item["b"].shape == (1, 16, 16)


def test_shape_stats_of_empty_and_blob_images():
    empty = np.zeros((16, 16), dtype=np.uint8)
    assert shape_stats(empty)["area"] == 0.0 and classify_shape(shape_stats(empty)) == "empty"
    blob = np.zeros((16, 16), dtype=np.uint8)
    blob[2:14, 2:4] = blob[2:4, 2:14] = 255  # an L: fits neither a box nor a disc
    assert classify_shape(shape_stats(blob)) == "other"
    rgb = np.repeat(blob[:, :, None], 3, axis=2)  # a generator's 3-channel output reads the same
    assert shape_stats(rgb) == shape_stats(blob)


# ---------------------------------------------------------------- colour <-> grey


def _fake_source(root: Path) -> Path:
    """A horse2zebra-like folder of small random colour photos, plus one grey photo per split."""
    rng = np.random.default_rng(0)
    for split, count in (("trainA", 7), ("trainB", 7), ("testA", 3), ("testB", 3)):
        folder = root / split
        folder.mkdir(parents=True)
        for i in range(count):
            base = rng.integers(0, 256, size=3)
            noise = rng.integers(-40, 40, size=(20, 20, 3))
            arr = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"{split}_{i}.jpg", quality=95)
        Image.fromarray(rng.integers(0, 256, size=(20, 20), dtype=np.uint8)).save(folder / f"{split}_grey.jpg")
    return root


@pytest.fixture(scope="module")
def colour_grey(tmp_path_factory) -> tuple[Path, Path]:
    source = _fake_source(tmp_path_factory.mktemp("source"))
    out = make_colour_grey_dataset(source, tmp_path_factory.mktemp("cg") / "data", n=5, n_test=2, size=12, seed=1)
    return source, out


def test_colour_grey_layout_and_counts(colour_grey):
    _, out = colour_grey
    counts = {split: len(_pngs(out / split)) for split in
              ("trainA", "trainB", "testA", "testB", "trainB_original", "testB_original")}
    assert counts == {"trainA": 5, "trainB": 5, "testA": 2, "testB": 2, "trainB_original": 5, "testB_original": 2}
    for path in _pngs(out / "trainA"):
        with Image.open(path) as img:
            assert img.mode == "RGB" and img.size == (12, 12) and chroma(img) >= 4
    for path in _pngs(out / "trainB"):
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (12, 12)


def test_grey_is_pil_grey_of_a_photo_not_in_domain_a(colour_grey):
    source, out = colour_grey
    for phase in ("train", "test"):
        names_a = {p.name for p in _pngs(out / f"{phase}A")}
        names_b = [p.name for p in _pngs(out / f"{phase}B")]
        assert names_b and not names_a & set(names_b)
        for name in names_b:
            with Image.open(out / f"{phase}B_original" / name) as original, Image.open(out / f"{phase}B" / name) as grey:
                assert original.mode == "RGB"
                np.testing.assert_array_equal(np.asarray(original.convert("L")), np.asarray(grey))
    # the already-grey source photos are never used
    used = {p.stem for split in ("trainA", "trainB", "testA", "testB") for p in _pngs(out / split)}
    assert not any(stem.endswith("_grey") for stem in used)
    # train and test photos come from the source's train and test folders respectively
    assert all(s.startswith("train") for s in (p.stem for p in _pngs(out / "trainA") + _pngs(out / "trainB")))
    assert all(s.startswith("test") for s in (p.stem for p in _pngs(out / "testA") + _pngs(out / "testB")))


def test_colour_grey_deterministic(tmp_path, colour_grey):
    source, out = colour_grey
    again = make_colour_grey_dataset(source, tmp_path / "again", n=5, n_test=2, size=12, seed=1)
    other = make_colour_grey_dataset(source, tmp_path / "other", n=5, n_test=2, size=12, seed=2)
    for split in ("trainA", "trainB", "testB_original"):
        first = [(p.name, p.read_bytes()) for p in _pngs(out / split)]
        assert first == [(p.name, p.read_bytes()) for p in _pngs(again / split)]
    assert [p.name for p in _pngs(out / "trainA")] != [p.name for p in _pngs(other / "trainA")]


def test_colour_grey_needs_enough_photos(tmp_path, colour_grey):
    source, _ = colour_grey
    with pytest.raises(ValueError, match="14 colour train photos, need 16"):
        make_colour_grey_dataset(source, tmp_path / "x", n=8, n_test=1, size=12)
