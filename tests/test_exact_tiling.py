"""--tile equals the whole image: every instance norm gets the whole image's statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import main
from cyclegan.data.images import to_pil, to_tensor
from cyclegan.nets import ResnetGenerator, UnetGenerator
from cyclegan.tiling import ExactTiler, receptive_radius
from cyclegan.training.loop import train
from cyclegan.translate import Translator

from conftest import SHARED_DATA, tiny_config

CPU = torch.device("cpu")
PHOTO = SHARED_DATA / "horse2zebra" / "testA" / "n02381460_1360.jpg"


def _photo(w: int, h: int) -> torch.Tensor:
    return to_tensor(Image.open(PHOTO).convert("RGB").resize((w, h), Image.BICUBIC)).unsqueeze(0)


def _levels(t: torch.Tensor) -> np.ndarray:
    return np.asarray(to_pil(t[0])).astype(int)


@pytest.mark.parametrize("tile", [40, 64])
def test_random_resnet_tiles_equal_the_whole_real_photo(tile):
    torch.manual_seed(0)
    t = Translator(ResnetGenerator(3, 3, ngf=8, n_blocks=2).eval(), 4, 3, CPU)
    x = _photo(150, 106)  # not a multiple of 4 or of the tile: padding and ragged last tiles
    whole, tiled = t.translate_tensor(x), t.translate_tensor(x, tile=tile)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-4
    assert np.abs(_levels(tiled) - _levels(whole)).max() <= 2  # the bar; measured 0 or 1 level


def test_halo_is_what_makes_it_exact():
    # The same tiler with too small a halo (the crop's own padding leaks in) differs visibly: the test can fail.
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=2).eval()
    x = _photo(128, 96)
    tiler = ExactTiler(net, 32)
    tiler.halo = 8
    with torch.no_grad():
        assert (tiler(x) - net(x)).abs().max() > 0.05


def test_per_tile_statistics_would_drift():
    # What the old tiler did (each tile normalised on its own) is far from the whole image; exact is not.
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=1).eval()
    x = _photo(128, 128)
    with torch.no_grad():
        whole = net(x)
        per_tile = torch.cat([torch.cat([net(x[..., r:r + 64, c:c + 64]) for c in (0, 64)], -1) for r in (0, 64)], -2)
        assert (per_tile - whole).abs().max() > 0.05
        assert (ExactTiler(net, 64)(x) - whole).abs().max() < 1e-4


def test_batch_and_grayscale_and_batch_norm():
    torch.manual_seed(1)
    net = ResnetGenerator(1, 1, ngf=4, n_blocks=1, norm="batch").eval()
    t = Translator(net, 4, 1, CPU)
    x = torch.cat([_photo(64, 72).mean(1, keepdim=True), torch.rand(1, 1, 72, 64) * 2 - 1])
    torch.testing.assert_close(t.translate_tensor(x, tile=32), t.translate_tensor(x), atol=1e-5, rtol=0)


def test_unet_cannot_be_tiled_exactly_and_blends():
    assert receptive_radius(UnetGenerator(3, 3, num_downs=5, ngf=4)) is None
    t = Translator(UnetGenerator(3, 3, num_downs=5, ngf=4).eval(), 32, 3, CPU)
    assert not t.tileable() and t.translate_tensor(torch.rand(1, 3, 70, 50), tile=32).shape == (1, 3, 70, 50)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    data = root / "data"
    for domain in ("trainA", "trainB"):
        (data / domain).mkdir(parents=True)
        for p in sorted((SHARED_DATA / "horse2zebra" / domain).glob("*.jpg"))[:4]:
            Image.open(p).resize((48, 48)).save(data / domain / p.name)
    return train(tiny_config(data, root / "runs", max_steps=6))


@pytest.mark.slow
def test_short_trained_generator_cli_tiles_equal_whole_on_a_real_photo(trained_run, tmp_path):
    (tmp_path / "in").mkdir()
    Image.open(PHOTO).convert("RGB").resize((300, 200), Image.BICUBIC).save(tmp_path / "in" / "photo.png")
    for name, extra in (("whole", []), ("tiled", ["--tile", "64"])):
        assert main(["translate", str(trained_run), str(tmp_path / "in"), "--output-dir", str(tmp_path / name),
                     "--no-progress", "--memory-budget", "64G", *extra]) == 0
    whole = np.asarray(Image.open(tmp_path / "whole" / "photo.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "photo.png")).astype(int)
    assert whole.shape == tiled.shape == (200, 300, 3)
    assert np.abs(whole - tiled).max() <= 2
