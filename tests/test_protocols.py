"""Named FID protocols: their definitions, the resize each uses, the CLI and the JSON record."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import make_images, tiny_config
from cyclegan.cli import main
from cyclegan.detectors import as_uint8
from cyclegan.metrics import protocols
from cyclegan.metrics.protocols import PROTOCOLS, get_protocol, protocol_features, real_files_for
from cyclegan.training.loop import train


def _tiny(images, resize="tf1", batch_size=50, device="auto", model=None):
    """Mean colour of each quarter of each image (12-d), plus the resize's name folded in."""
    out = []
    for item in images:
        a = as_uint8(item).astype(np.float64)
        h, w = a.shape[0] // 2, a.shape[1] // 2
        out.append(np.concatenate([a[:h, :w].mean((0, 1)), a[:h, w:].mean((0, 1)), a[h:, :w].mean((0, 1)),
                                   a[h:, w:].mean((0, 1))]) / 255 + (resize == "torch"))
    return np.stack(out)


@pytest.fixture
def tiny(monkeypatch):
    calls = []

    def features(images, resize="tf1", batch_size=50, device="auto", model=None):
        images = list(images)
        calls.append((len(images), resize))
        return _tiny(images, resize)

    monkeypatch.setattr(protocols, "protocol_features", features)
    return calls


@pytest.fixture
def h2z_like(tmp_path):
    root = tmp_path / "h2z"
    for folder, n, seed in (("trainA", 5, 1), ("trainB", 6, 2), ("testA", 4, 3), ("testB", 5, 4)):
        make_images(root / folder, n, size=(16, 16), seed=seed)
    return root


def test_definitions():
    assert {"ours", "cut", "mmagic", "gancomp"} <= set(PROTOCOLS)
    assert PROTOCOLS["ours"].fake_indices(120) == list(range(120))
    assert PROTOCOLS["cut"].fake_indices(120) == list(range(120))
    mm = PROTOCOLS["mmagic"].fake_indices(120)
    assert len(mm) == 140 and mm[:120] == list(range(120)) and mm[120:] == list(range(20))
    assert PROTOCOLS["gancomp"].real_phases == ("train", "test")
    assert PROTOCOLS["ours"].resize == "tf1" and PROTOCOLS["cut"].resize == "torch"
    for p in PROTOCOLS.values():
        assert p.published and p.summary
    with pytest.raises(ValueError, match="unknown --protocol 'fid50k'"):
        get_protocol("fid50k")


def test_real_sets(h2z_like):
    gancomp = real_files_for(PROTOCOLS["gancomp"], h2z_like, "B")
    assert len(gancomp) == 11 and gancomp[0].parent.name == "trainB" and gancomp[-1].parent.name == "testB"
    assert len(real_files_for(PROTOCOLS["cut"], h2z_like, "A")) == 4


class _PoolNet(torch.nn.Module):
    """Stands in for Inception: 2048 features from the 299 x 299 input's pixels."""

    def forward(self, x):
        assert x.shape[1:] == (3, 299, 299)
        return x[:, 0, :32, :64].reshape(len(x), 2048)


def test_the_two_resize_pipelines_differ_as_defined():
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, ::2] = 255  # vertical stripes: the two bilinear mappings sample them differently
    tf1 = protocol_features([img], "tf1", model=_PoolNet(), device="cpu")
    torch_ = protocol_features([img], "torch", model=_PoolNet(), device="cpu")
    assert tf1.shape == torch_.shape == (1, 2048)
    assert np.abs(tf1 - torch_).max() > 0.1
    # torch pipeline: F.interpolate(align_corners=False) of [0, 1] pixels, then 2x - 1 (pytorch-fid)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    want = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    np.testing.assert_allclose(torch_[0], want[0, 0, :32, :64].reshape(-1).numpy(), atol=1e-5)
    # tf1 pipeline: (x - 128) / 128 after the TF1 resize; pixel 0 of a 255 column stays 255
    assert tf1[0, 0] == pytest.approx((255 - 128) / 128, abs=1e-6)


def test_folder_form_records_the_protocol(h2z_like, tmp_path, tiny, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", "--fake", str(h2z_like / "testA"), "--dataroot", str(h2z_like), "--protocol", "mmagic",
                 "--json", str(out), "--cache-dir", str(tmp_path / "cache"), "--fid-method", "fast"]) == 0
    scores = json.loads(out.read_text())
    assert scores["protocol"] == "mmagic" and scores["n_fake"] == 140 and scores["n_real"] == 5
    assert scores["kid_std"] >= 0 and "protocol mmagic" in capsys.readouterr().out
    assert main(["evaluate", "--fake", str(h2z_like / "testA"), "--dataroot", str(h2z_like), "--protocol", "gancomp",
                 "--json", str(out), "--cache-dir", str(tmp_path / "cache"), "--fid-method", "fast"]) == 0
    scores = json.loads(out.read_text())
    assert (scores["protocol"], scores["n_fake"], scores["n_real"]) == ("gancomp", 4, 11)
    # real features cached: a second gancomp evaluation extracts only the fakes
    before = len(tiny)
    main(["evaluate", "--fake", str(h2z_like / "testA"), "--dataroot", str(h2z_like), "--protocol", "gancomp",
          "--cache-dir", str(tmp_path / "cache"), "--fid-method", "fast"])
    assert tiny[before:] == [(4, "torch")]


def test_protocol_with_real_is_one_line(h2z_like, capsys):
    assert main(["evaluate", "--fake", str(h2z_like / "testA"), "--real", str(h2z_like / "testB"),
                 "--protocol", "cut", "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dataroot" in err


def test_run_form_records_protocol_and_failure_checks(h2z_like, tmp_path, tiny, capsys):
    run_dir = train(tiny_config(h2z_like, tmp_path / "runs", max_steps=1))
    assert main(["evaluate", str(run_dir), "--protocol", "cut", "--no-cache", "--fid-method", "fast",
                 "--no-progress"]) == 0
    results = json.loads((run_dir / "eval" / "metrics.json").read_text())
    for direction in ("AtoB", "BtoA"):
        assert results[direction]["protocol"] == "cut"
        assert set(results[direction]["detectors"]) == {"identity", "inversion", "mode_collapse", "tint",
                                                        "checkerboard"}
    assert (results["AtoB"]["n_fake"], results["AtoB"]["n_real"]) == (4, 5)
    out = capsys.readouterr().out
    assert "AtoB (cut)" in out and ("failure checks passed" in out or "WARNING" in out)
    assert main(["evaluate", str(run_dir), "--protocol", "cut", "--size", "32", "--no-cache"]) == 2
    assert "--size" in capsys.readouterr().err
