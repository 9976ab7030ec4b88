import pytest
import torch
from PIL import Image

from cyclegan.rundir import CheckpointError, latest_checkpoint
from cyclegan.training.loop import train
from cyclegan.translate import Translator, pad_to_multiple

from conftest import make_images, tiny_config


@pytest.fixture
def run_dir(unaligned_root, tmp_path):
    return train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=2))


def test_pad_to_multiple_and_crop_back():
    x = torch.randn(1, 3, 13, 6)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (16, 8) and (h, w) == (13, 6)
    assert torch.equal(padded[..., :13, :6], x)
    tiny, _ = pad_to_multiple(torch.randn(1, 3, 1, 1), 4)  # too small to reflect
    assert tiny.shape[-2:] == (4, 4)


def test_files_keep_their_size(run_dir, tmp_path):
    inputs = tmp_path / "in"
    make_images(inputs, 2, size=(37, 23), suffix=".jpg")
    make_images(inputs / "more", 1, size=(10, 30))
    out = tmp_path / "out"
    written = Translator.from_run(run_dir, "BtoA").translate_files([inputs, inputs / "more"], out, progress=False)
    assert len(written) == 3
    sizes = sorted(Image.open(p).size for p in written)
    assert sizes == [(10, 30), (37, 23), (37, 23)]


def test_pil_and_tensor_api_agree(run_dir):
    t = Translator.from_run(run_dir)
    img = Image.new("RGB", (21, 17), (200, 30, 60))
    out = t(img)
    assert isinstance(out, Image.Image) and out.size == (21, 17)
    x = torch.rand(3, 17, 21) * 2 - 1
    y = t(x)
    assert y.shape == (3, 17, 21) and y.abs().max() <= 1
    assert torch.equal(t(x.unsqueeze(0))[0], y)


def test_translation_is_the_trained_generator(run_dir):
    from cyclegan.models import CycleGANNets
    from cyclegan.config import TrainConfig
    from cyclegan.rundir import load_nets

    nets = CycleGANNets.build(TrainConfig.load(run_dir / "config.json").model)
    load_nets(latest_checkpoint(run_dir), nets.by_name())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = nets.gen_ab.eval()(x)
    torch.testing.assert_close(Translator.from_run(run_dir)(x), expected)


def test_cycle_view_and_max_size(run_dir, tmp_path):
    inputs = make_images(tmp_path / "in", 1, size=(40, 20))
    t = Translator.from_run(run_dir, with_inverse=True)
    t.translate_files(inputs, tmp_path / "out", cycle_view=True, max_size=16, progress=False)
    assert Image.open(tmp_path / "out" / "img_000.png").size == (40, 20)
    strip = Image.open(tmp_path / "out" / "cycle" / "img_000.png")
    assert strip.size == (3 * 16, 8)


def test_weights_file_plus_config(run_dir):
    weights = latest_checkpoint(run_dir) / "gen_ba.safetensors"
    t = Translator.from_weights(weights, run_dir / "config.json", direction="BtoA")
    assert t(Image.new("RGB", (8, 8))).size == (8, 8)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not a run directory"):
        Translator.from_run(tmp_path)
