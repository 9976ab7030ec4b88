"""Proof of equality with the authors' code, from the files their code wrote (../shared/golden, read in place).

* their float64 ten-step traces (default, and the variant: vanilla GAN, no identity, ResNet-6,
  2-layer D, batch norm) replayed with our step from their step-0 weights: every loss at
  every step and every weight after step 10 within 1e-8;
* their released-model form (zoo/latest_net_G.pth) translating zoo/input: within one level
  of their test.py output (they truncate, we round);
* their preprocessing (get_transform with fixed crop and flip) of real images: exactly equal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.authors import NET_MAP, config_from_authors, parse_argv, parse_opt_file
from cyclegan.authors_trace import replay
from cyclegan.config import DataConfig
from cyclegan.data.images import to_tensor
from cyclegan.data.transforms import TransformParams, apply_transform
from cyclegan.translate import Translator

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO.parent / "shared" / "golden"
pytestmark = pytest.mark.skipif(not (GOLDEN / "README.md").is_file(), reason="needs ../shared/golden")


@pytest.mark.parametrize("trace", ["default", "variant"])
def test_our_step_reproduces_their_trace_in_float64(trace):
    result = replay(GOLDEN / trace)
    assert result.steps == 10 and len(result.per_step) == 10
    assert all(len(step) == 8 for step in result.per_step)  # all eight of their losses compared
    assert result.worst_loss <= 1e-8, result.worst_loss_at
    assert result.worst_weight <= 1e-8, result.worst_weight_at


def test_the_trace_options_map_like_train_opt_txt():
    """The trace's train.py arguments and its train_opt.txt give the same config (one mapping)."""
    for trace in ("default", "variant"):
        from_argv = config_from_authors(parse_argv(json.loads((GOLDEN / trace / "losses.json").read_text())["options"]))[0]
        from_file = config_from_authors(parse_opt_file(GOLDEN / trace / "checkpoints" / "golden" / "train_opt.txt"))[0]
        same_root = dataclasses.replace(from_file.data, dataroot=from_argv.data.dataroot)  # ./datasets/x vs datasets/x
        assert from_argv == dataclasses.replace(from_file, data=same_root)
    variant = from_argv
    assert (variant.model.generator, variant.model.norm, variant.model.discriminator, variant.model.n_layers_d) == \
        ("resnet_6blocks", "batch", "n_layers", 2)
    assert (variant.loss.gan_mode, variant.loss.lambda_identity, variant.data.flip) == ("vanilla", 0.0, False)


def _script(trace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "scripts" / "compare_with_authors.py"), str(trace)],
                          capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_a_wrong_mapping_would_be_caught(tmp_path):
    """The comparison can fail: a trace whose recorded losses are off by 1e-6 is reported different."""
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "inputs.pt").symlink_to(GOLDEN / "default" / "inputs.pt")
    (trace / "checkpoints").symlink_to(GOLDEN / "default" / "checkpoints")
    record = json.loads((GOLDEN / "default" / "losses.json").read_text())
    record["losses"][3]["D_A"] += 1e-6
    (trace / "losses.json").write_text(json.dumps(record))
    result = replay(trace)
    assert result.worst_loss > 1e-8 and result.worst_loss_at == "step 4 D_A"
    proc = _script(trace)
    assert proc.returncode == 1 and "DIFFERENT" in proc.stdout


@pytest.mark.slow
def test_compare_script_passes_on_the_golden_trace():
    proc = _script(GOLDEN / "variant")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worst loss difference" in proc.stdout and "EQUAL within 1e-08" in proc.stdout


def test_import_puts_their_networks_in_our_slots(tmp_path):
    """Their D_A judges domain B: it must land in disc_b (and D_B in disc_a)."""
    from cyclegan.import_run import import_authors_run
    from cyclegan.rundir import latest_checkpoint
    from safetensors.torch import load_file

    for trace in ("default", "variant"):
        src = GOLDEN / trace / "checkpoints" / "golden"
        run, _ = import_authors_run(src, f"imp_{trace}", tmp_path, epoch="0")
        ckpt = latest_checkpoint(run)
        assert ckpt.name == "epoch_0000"
        for theirs, ours in NET_MAP.items():
            want = torch.load(src / f"0_net_{theirs}.pth", weights_only=True)
            got = load_file(str(ckpt / f"{ours}.safetensors"))
            assert set(got) == set(want)
            for key in want:  # float64 files held in our float32 networks
                assert torch.equal(got[key], want[key].to(got[key].dtype)), (trace, theirs, key)


def test_released_model_translation_within_one_level(tmp_path):
    translator = Translator.from_pretrained(GOLDEN / "zoo" / "latest_net_G.pth", device="cpu")
    written = translator.translate_files([GOLDEN / "zoo" / "input"], tmp_path, progress=False)
    assert len(written) == 4
    worst = 0
    for expected in sorted((GOLDEN / "zoo" / "expected").glob("*_fake.png")):
        ours = np.asarray(Image.open(tmp_path / expected.name.replace("_fake", ""))).astype(int)
        theirs = np.asarray(Image.open(expected)).astype(int)
        assert ours.shape == theirs.shape
        diff = ours - theirs
        worst = max(worst, int(np.abs(diff).max()))
        assert diff.min() >= 0  # they truncate, we round: ours is never below theirs
    assert worst <= 1


def _cases():
    return torch.load(GOLDEN / "transforms" / "transforms.pt", weights_only=True)


def test_preprocessing_equals_theirs_exactly_in_every_case():
    cases = _cases()
    modes = {c["preprocess"] for c in cases}
    assert modes == {"resize_and_crop", "scale_width_and_crop", "scale_width", "crop", "none"}
    for case in cases:
        cfg = DataConfig(preprocess=case["preprocess"], load_size=case["load_size"], crop_size=case["crop_size"],
                         flip=case["flip"])
        img = Image.open(GOLDEN / "transforms" / case["image"]).convert("L" if case["grayscale"] else "RGB")
        x, y = case["crop_pos"]
        ours = to_tensor(apply_transform(img, TransformParams(x, y, case["flip"]), cfg))
        assert torch.equal(ours, case["tensor"]), {k: v for k, v in case.items() if k != "tensor"}
