"""Tiled translation: exact where the generator is local, seamless where instance norm is not."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from cyclegan import precision
from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.nets import ResnetGenerator
from cyclegan.training.loop import train
from cyclegan.translate import Translator, tile_overlap, tile_starts

from conftest import make_images, tiny_config

CPU = torch.device("cpu")


def _resnet(channels: int = 3, seed: int = 0) -> Translator:
    torch.manual_seed(seed)
    return Translator(ResnetGenerator(channels, channels, ngf=4, n_blocks=1).eval(), 4, channels, CPU)


def _texture(h: int, w: int) -> torch.Tensor:
    """A smooth, stationary (1, 3, H, W) pattern: neighbouring pixels differ little, so a seam would stand out,
    and every tile has about the whole image's statistics, as a photo's tiles roughly do."""
    y, x = torch.arange(h).float()[:, None], torch.arange(w).float()[None]
    return 0.5 * torch.stack([torch.sin(x / 5 + y / 7), torch.cos(y / 6 - x / 9), torch.sin((x + y) / 8)]).unsqueeze(0)


def _seam_ratio(out: torch.Tensor, tile: int, overlap: int, dim: int) -> float:
    """Mean |jump| between neighbouring pixels across tile edges, over the mean jump everywhere else."""
    size = out.shape[dim]
    starts = tile_starts(size, tile, overlap)
    edges = {s for s in starts if s > 0} | {s + tile for s in starts if s + tile < size}
    jumps = out.diff(dim=dim).abs().mean(dim=[d for d in range(out.dim()) if d != dim])  # index i: i -> i+1
    at_edge = torch.zeros(size - 1, dtype=torch.bool)
    at_edge[[e - 1 for e in edges]] = True
    return (jumps[at_edge].mean() / jumps[~at_edge].mean()).item()


@pytest.mark.parametrize("size,tile,overlap", [(97, 64, 8), (133, 64, 32), (200, 64, 0), (65, 64, 1), (7, 4, 2)])
def test_tiles_cover_the_side_with_at_least_the_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] == size - tile
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    assert tile_starts(50, 64, 8) == [0]


def test_image_within_one_tile_takes_the_whole_image_path():
    t = _resnet()
    x = torch.rand(2, 3, 41, 64) * 2 - 1
    assert torch.equal(t.translate_tensor(x, tile=64, overlap=16), t.translate_tensor(x))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("h,w,tile,overlap", [(97, 133, 64, 8), (97, 133, 64, 32), (130, 7, 16, 3), (40, 90, 30, None)])
def test_local_generator_tiled_equals_whole(channels, h, w, tile, overlap):
    # A 1x1 conv sees one pixel: any difference would come from the blend weights not summing to one.
    torch.manual_seed(0)
    t = Translator(nn.Sequential(nn.Conv2d(channels, channels, 1), nn.Tanh()), 4, channels, CPU)
    x = torch.rand(2, channels, h, w) * 2 - 1
    torch.testing.assert_close(t.translate_tensor(x, tile=tile, overlap=overlap, tile_batch=3),
                               t.translate_tensor(x), atol=1e-5, rtol=0)


class _NotLocal(nn.Module):
    """A wrapper the exact tiler does not know (as the U-Net): tiles are blended instead."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_instance_norm_tiles_blend_without_seams():
    torch.manual_seed(0)
    # Smooth output for a smooth input (no transposed-conv checkerboard), per-tile statistics: a hard cut
    # between tiles shows as a jump, which is what the blend must hide.
    net = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2, padding_mode="reflect"), nn.InstanceNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 3, 1), nn.Tanh())
    t = Translator(_NotLocal(net).eval(), 4, 3, CPU)
    assert not t.tileable() and Translator(net, 4, 3, CPU).tileable()
    x = _texture(120, 144)
    whole = t.translate_tensor(x)
    blended = t.translate_tensor(x, tile=64, overlap=16)
    hard = t.translate_tensor(x, tile=64, overlap=0)
    for dim in (2, 3):  # rows, columns
        seam = _seam_ratio(blended, 64, 16, dim)
        assert seam <= 1.5
        assert _seam_ratio(hard, 64, 0, dim) >= 1.5 * seam  # the measure does see a seam when there is one
    difference = (blended - whole).abs().mean().item()
    assert difference < 0.03  # measured 0.013 of the [-1, 1] range (1.6/255); the output's std is 0.25


@pytest.mark.parametrize("channels", [1, 3])
def test_awkward_sizes_keep_their_size(channels):
    t = _resnet(channels)
    x = torch.rand(2, channels, 97, 133) * 2 - 1
    out = t.translate_tensor(x, tile=64)
    assert out.shape == x.shape and out.abs().max() <= 1
    # Tiles that are not a multiple of the generator's 4 are padded like whole images are.
    assert t.translate_tensor(x[:, :, :45, :], tile=30, overlap=5).shape == (2, channels, 45, 133)
    # Each image of a batch is tiled on its own.
    torch.testing.assert_close(t.translate_tensor(x[1:], tile=64), out[1:])
    assert isinstance(t(Image.new("RGB" if channels == 3 else "L", (70, 9)), tile=32), Image.Image)


@pytest.mark.parametrize("tile,overlap", [(0, None), (-8, 2), (16, 9), (16, -1)])
def test_bad_tiling_is_refused(tile, overlap):
    with pytest.raises(ConfigError):
        tile_overlap(tile, overlap)
    with pytest.raises(ConfigError):
        _resnet().translate_tensor(torch.zeros(1, 3, 8, 8), tile=tile, overlap=overlap)


def test_overlap_without_tile_is_refused_and_default_is_an_eighth():
    with pytest.raises(ConfigError, match="needs a tile"):
        tile_overlap(None, 8)
    assert tile_overlap(None, None) is None and tile_overlap(512, None) == 64 and tile_overlap(16, 8) == 8


def test_amp_refused_where_bfloat16_is_emulated(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(ConfigError, match="no bfloat16 instructions"):
        Translator(nn.Conv2d(3, 3, 1), 4, 3, CPU, amp=True)
    with pytest.raises(ConfigError, match="needs a CUDA GPU or a CPU with native bfloat16"):
        Translator(nn.Conv2d(3, 3, 1), 4, 3, torch.device("meta"), amp=True)


@pytest.mark.skipif(not precision.cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_amp_on_a_bfloat16_cpu_is_close_to_float32():
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=2).eval()
    x = torch.rand(2, 3, 70, 90) * 2 - 1
    exact = Translator(net, 4, 3, CPU).translate_tensor(x)
    fast = Translator(net, 4, 3, CPU, amp=True)
    out = fast.translate_tensor(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert 0 < (out - exact).abs().mean() < 0.02  # bfloat16 did run, and stays close
    assert next(net.parameters()).is_contiguous()  # no channels_last on CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_amp_on_gpu_is_close_to_float32():
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=2).eval()
    x = torch.rand(2, 3, 70, 90) * 2 - 1
    exact = Translator(net.cuda(), 4, 3, torch.device("cuda")).translate_tensor(x)
    fast = Translator(net, 4, 3, torch.device("cuda"), amp=True)
    out = fast.translate_tensor(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert (out - exact).abs().mean() < 0.02
    assert fast.translate_tensor(x, tile=64).shape == x.shape
    # results come back on the input's device, whichever method gave them
    assert out.device == x.device and fast(x).device == x.device
    assert fast.translate_tensor(x.cuda()).device.type == "cuda"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiling")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


def test_cli_tiles_keep_sizes(run_dir, tmp_path):
    inputs = tmp_path / "in"
    make_images(inputs, 2, size=(45, 23), suffix=".jpg")
    make_images(inputs / "small", 1, size=(12, 12))
    out = tmp_path / "out"
    assert main(["translate", str(run_dir), str(inputs), str(inputs / "small"), "--output-dir", str(out),
                 "--tile", "16", "--tile-overlap", "4", "--batch-size", "3", "--no-progress"]) == 0
    assert sorted(Image.open(p).size for p in out.glob("*.png")) == [(12, 12), (45, 23), (45, 23)]


def test_cycle_view_with_tiles(run_dir, tmp_path):
    inputs = make_images(tmp_path / "in", 1, size=(40, 20))
    Translator.from_run(run_dir, with_inverse=True).translate_files(
        inputs, tmp_path / "out", cycle_view=True, tile=16, progress=False)
    assert Image.open(tmp_path / "out" / "img_000.png").size == (40, 20)
    assert Image.open(tmp_path / "out" / "cycle" / "img_000.png").size == (3 * 40, 20)


@pytest.mark.parametrize("extra,words", [
    (["--tile", "0"], "--tile must be at least 16"),
    (["--tile", "4"], "--tile must be at least 16"),
    (["--max-size", "4"], "--max-size must be at least 16"),
    (["--memory-budget", "lots"], "not a memory size"),
    (["--tile", "16", "--tile-overlap", "9"], "more than half the tile"),
    (["--tile-overlap", "4"], "needs a tile"),
    (["--amp", "--device", "cpu"], "needs a CUDA GPU or a CPU with native bfloat16"),
])
def test_cli_bad_tiling_and_amp_are_one_line_errors(run_dir, tmp_path, capsys, monkeypatch, extra, words):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    make_images(tmp_path / "in", 1)
    code = main(["translate", str(run_dir), str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                 "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("cyclegan: error:") and words in err
