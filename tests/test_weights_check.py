"""Weights that are not what they claim are refused with one line naming the file; NaN outputs stop translate."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cyclegan.cli import main
from cyclegan.rundir import CheckpointError, latest_checkpoint
from cyclegan.training.loop import train
from cyclegan.translate import Translator

from conftest import make_images, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


def _weights(run_dir):
    return latest_checkpoint(run_dir) / "gen_ab.safetensors"


def _translate(run_dir, weights, tmp_path, capsys):
    make_images(tmp_path / "in", 1)
    code = main(["translate", str(weights), str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"),
                 "--config", str(run_dir / "config.json"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    return code, err


def _one_line(code, err, *words):
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("cyclegan: error:"), err
    for word in words:
        assert word in err, err


def test_nan_weights_are_refused(run_dir, tmp_path, capsys):
    tensors = load_file(_weights(run_dir))
    key = next(k for k, v in tensors.items() if v.dim() == 4)
    tensors[key][0, 0, 0, 0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, bad)
    code, err = _translate(run_dir, bad, tmp_path, capsys)
    _one_line(code, err, str(bad), key, "non-finite")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_int64_weights_are_refused(run_dir, tmp_path, capsys):
    tensors = load_file(_weights(run_dir))
    key = next(k for k, v in tensors.items() if v.dim() == 4)
    tensors[key] = (tensors[key] * 100).to(torch.int64)  # load_state_dict would cast it silently
    bad = tmp_path / "int.safetensors"
    save_file(tensors, bad)
    code, err = _translate(run_dir, bad, tmp_path, capsys)
    _one_line(code, err, str(bad), "torch.int64", "expected torch.float32")


def test_random_bytes_in_the_tensor_data_are_refused(run_dir, tmp_path, capsys):
    raw = bytearray(_weights(run_dir).read_bytes())
    header_len = struct.unpack("<Q", raw[:8])[0]
    start = 8 + header_len
    header = json.loads(raw[8:start])
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    raw[start:] = np.random.default_rng(0).integers(0, 256, len(raw) - start, dtype=np.uint8).tobytes()
    bad = tmp_path / "random.safetensors"
    bad.write_bytes(bytes(raw))
    code, err = _translate(run_dir, bad, tmp_path, capsys)
    _one_line(code, err, str(bad), "non-finite")


def test_non_finite_output_stops_translate(run_dir, tmp_path, capsys):
    # Finite weights whose output overflows: a huge first-layer weight gives inf -> NaN downstream.
    tensors = load_file(_weights(run_dir))
    key = next(k for k, v in tensors.items() if v.dim() == 4)
    tensors[key] = torch.full_like(tensors[key], 3e38)  # finite, but sums of 147 of them overflow
    bad = tmp_path / "huge.safetensors"
    save_file(tensors, bad)
    code, err = _translate(run_dir, bad, tmp_path, capsys)
    _one_line(code, err, "non-finite", "img_000")
    assert not list((tmp_path / "out").glob("*.png"))


def test_translator_api_refuses_too(run_dir, tmp_path):
    tensors = load_file(_weights(run_dir))
    tensors[next(iter(tensors))].fill_(float("inf"))
    bad = tmp_path / "inf.safetensors"
    save_file(tensors, bad)
    with pytest.raises(CheckpointError, match="non-finite"):
        Translator.from_weights(bad, run_dir / "config.json")
