"""Any image size translates (down to 1x1), mixed sizes train, and memory limits give tiles or one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import main
from cyclegan.data.images import DatasetError
from cyclegan.training.loop import train
from cyclegan.translate import Translator

from conftest import SHARED_DATA, make_images, tiny_config

PHOTO = SHARED_DATA / "horse2zebra" / "testA" / "n02381460_120.jpg"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sizes")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (600, 1), (1, 600), (3, 10000), (5, 7)])
def test_tiny_and_thin_images_translate_at_their_size(run_dir, tmp_path, size):
    inputs = tmp_path / "in"
    make_images(inputs, 1, size=size)
    assert main(["translate", str(run_dir), str(inputs), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    out = Image.open(tmp_path / "out" / "img_000.png")
    assert out.size == size and np.asarray(out).std() >= 0  # decodes fully


def test_tiny_image_is_the_replicated_image_averaged_back(run_dir):
    # 2x2 -> each pixel repeated 4x4 (8x8), translated, each 4x4 block averaged: documented behaviour.
    t = Translator.from_run(run_dir)
    x = torch.rand(1, 3, 2, 2) * 2 - 1
    big = t.translate_tensor(x.repeat_interleave(4, -2).repeat_interleave(4, -1))
    torch.testing.assert_close(t.translate_tensor(x), torch.nn.functional.avg_pool2d(big, 4))


@pytest.mark.slow
def test_memory_budget_tiles_automatically_with_a_message(run_dir, tmp_path, capsys):
    photo = Image.open(PHOTO).convert("RGB").resize((512, 512), Image.BICUBIC)  # a real photo
    (tmp_path / "in").mkdir()
    photo.save(tmp_path / "in" / "horse.png")
    assert main(["translate", str(run_dir), str(tmp_path / "in"), "--output-dir", str(tmp_path / "whole"),
                 "--no-progress", "--memory-budget", "64G"]) == 0
    assert "memory budget" not in capsys.readouterr().err
    assert main(["translate", str(run_dir), str(tmp_path / "in"), "--output-dir", str(tmp_path / "tiled"),
                 "--no-progress", "--memory-budget", "40M"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"horse.png: 512x512 needs about \d+ MiB whole, more than the 40 MiB memory budget; "
                     r"translating it in exact \d+ px tiles", err), err
    whole = np.asarray(Image.open(tmp_path / "whole" / "horse.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "tiled" / "horse.png")).astype(int)
    assert np.abs(whole - tiled).max() <= 2


_LIMITED = textwrap.dedent("""
    import resource, sys
    from cyclegan.cli import main
    size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    limit = size + 700 * 2**20  # room for the model and a few hundred MB of activations, not for the whole image
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_cpu_out_of_memory_is_one_line_naming_tile_which_then_works(run_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.open(PHOTO).convert("RGB").resize((2400, 2400), Image.BICUBIC).save(inputs / "big.jpg")
    script = tmp_path / "limited.py"
    script.write_text(_LIMITED)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, str(script), "translate", str(run_dir), str(inputs), "--no-progress", "--output-dir"]
    # A budget far above what the process may use: the whole-image pass runs out of memory for real.
    run = subprocess.run(base + [str(tmp_path / "a"), "--memory-budget", "1T"], capture_output=True, text=True, env=env)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("cyclegan: error: out of memory translating") and "--tile" in err
    assert not list((tmp_path / "a").glob("*.png"))
    # The option the line names works under the same limit.
    run = subprocess.run(base + [str(tmp_path / "b"), "--tile", "512"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert Image.open(tmp_path / "b" / "big.png").size == (2400, 2400)


def _mixed_root(root: Path) -> Path:
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        for i, size in enumerate([(64, 64), (72, 48), (80, 56)]):
            make_images(root / domain / f"s{i}", 1, size=size, seed=seed + i)
            (root / domain / f"s{i}" / "img_000.png").rename(root / domain / f"{i}.png")
            (root / domain / f"s{i}").rmdir()
    return root


def test_mixed_sizes_train_at_batch_1_with_padded_sample_grids(tmp_path):
    root = _mixed_root(tmp_path / "data")
    cfg = tiny_config(root, tmp_path / "runs", max_steps=4, sample_freq=2, save_latest_freq=2)
    cfg = replace(cfg, data=replace(cfg.data, preprocess="none"))
    run = train(cfg)
    grids = sorted((run / "samples").glob("*.png"))
    assert grids
    grid = Image.open(grids[-1])
    assert grid.width >= 2 + 4 * (80 + 2)  # four columns wide enough for the largest image


def test_mixed_sizes_with_a_larger_batch_are_one_line(tmp_path):
    root = _mixed_root(tmp_path / "data")
    cfg = tiny_config(root, tmp_path / "runs", max_steps=2)
    cfg = replace(cfg, data=replace(cfg.data, preprocess="none"), optim=replace(cfg.optim, batch_size=3))
    with pytest.raises(DatasetError, match="use --batch-size 1"):
        train(cfg)
