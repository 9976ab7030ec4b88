"""Failure detectors: each one on outputs built to fail it, and on real images that should pass."""

from __future__ import annotations

import numpy as np
import pytest

from cyclegan.data.demo import demo_root
from cyclegan.data.images import list_images
from cyclegan.detectors import as_uint8, detect, failed, findings_dict, print_findings

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def real():
    """Real horse2zebra images (the demo subset, 96 px): horses, and zebras split in two halves."""
    horses = [as_uint8(p) for p in list_images(demo_root() / "testA")[:10]]
    zebras = [as_uint8(p) for p in list_images(demo_root() / "testB")]
    return horses, zebras[:10], zebras[10:]


def _verdicts(inputs, outputs, reals) -> dict[str, bool]:
    return {f.name: f.ok for f in detect(inputs, outputs, reals)}


def _clip(a) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def test_real_images_pass_every_detector(real):
    horses, zebras, other_zebras = real
    # "translations" that are real zebras: unrelated to the horses, as varied as real images
    assert _verdicts(horses, zebras, other_zebras) == dict.fromkeys(
        ("identity", "inversion", "mode_collapse", "tint", "checkerboard"), True)
    # and the other way round: real horses as the outputs, against real horses
    assert all(_verdicts(zebras, horses, [as_uint8(p) for p in list_images(demo_root() / "testA")[10:]]).values())


def test_identity_collapse(real):
    horses, _, zebras = real
    copies = [_clip(h.astype(int) + RNG.integers(-2, 3, h.shape)) for h in horses]
    verdicts = _verdicts(horses, copies, zebras)
    assert verdicts["identity"] is False and verdicts["mode_collapse"] is True


def test_identity_passes_a_partial_translation(real):
    horses, _, zebras = real
    # half of each image changed (a translation that keeps the background): not a copy
    changed = [np.concatenate([h[:, : h.shape[1] // 2], 255 - h[:, h.shape[1] // 2:]], axis=1) for h in horses]
    assert _verdicts(horses, changed, zebras)["identity"] is True


def test_colour_inversion(real):
    horses, _, zebras = real
    verdicts = _verdicts(horses, [255 - h for h in horses], zebras)
    assert verdicts["inversion"] is False and verdicts["identity"] is True


def test_mode_collapse(real):
    horses, zebras, other = real
    same = [_clip(zebras[0].astype(int) + RNG.integers(-6, 7, zebras[0].shape)) for _ in horses]
    verdicts = _verdicts(horses, same, other)
    assert verdicts["mode_collapse"] is False and verdicts["identity"] is True
    finding = next(f for f in detect(horses, same, other) if f.name == "mode_collapse")
    assert finding.value < 0.35 * finding.reference


def test_tint_drift(real):
    horses, zebras, other = real
    tinted = [_clip(z.astype(int) + np.array([0, 0, 60])) for z in zebras]
    verdicts = _verdicts(horses, tinted, other)
    assert verdicts["tint"] is False and verdicts["mode_collapse"] is True
    finding = next(f for f in detect(horses, tinted, other) if f.name == "tint")
    assert "B +" in finding.message  # names the channel that moved


@pytest.mark.parametrize("period", [2, 4])
def test_checkerboard_energy(real, period):
    horses, zebras, other = real
    h, w = zebras[0].shape[:2]
    i, j = np.indices((h, w))
    pattern = np.where((i // (period // 2) + j // (period // 2)) % 2 == 0, 3, -3)  # 3 levels of 255: faint
    gridded = [_clip(z.astype(int) + pattern[..., None]) for z in zebras]
    verdicts = _verdicts(horses, gridded, other)
    assert verdicts["checkerboard"] is False
    assert verdicts["identity"] and verdicts["tint"] and verdicts["mode_collapse"]


def test_tensor_outputs_and_console_lines(real, capsys):
    import torch

    horses, zebras, other = real
    as_tensors = [torch.from_numpy(z.copy()).permute(2, 0, 1).float() / 127.5 - 1 for z in zebras]
    checks = findings_dict(detect(horses, as_tensors, other))
    assert failed(checks) == []
    print_findings("AtoB", checks)
    assert "failure checks passed" in capsys.readouterr().out
    bad = findings_dict(detect(horses, [255 - h for h in horses], other))
    print_findings("AtoB", bad)
    out = capsys.readouterr().out
    assert "WARNING colour inversion" in out and "--lambda-identity" in out
    with pytest.raises(ValueError, match="as many inputs as outputs"):
        detect(horses, zebras[:3], other)
