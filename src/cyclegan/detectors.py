"""Cheap checks that catch the known ways a CycleGAN run fails, with the advice users need.

Each detector looks at the translations of one direction next to their inputs and next to real
images of the target domain, and returns a `Finding` (value, reference, pass/fail, one-line
message, advice). They cost milliseconds (images are compared at 64 x 64, except the spectrum),
so training runs them at every evaluation and `cyclegan evaluate RUN` prints them.

* identity collapse: the outputs are nearly the inputs (mean absolute difference in 0-255 units,
  at 64 x 64, below IDENTITY_MAX); the generator learned to copy.
* colour inversion: the outputs' luminance is anti-correlated with the inputs' (mean Pearson
  correlation below INVERSION_MAX); the cycle can be closed by inverting twice.
* mode collapse: the outputs hardly vary with the input. The measure is the output spread of
  docs/facades.md and scripts/reproduce_facades.py: mean over pixels of the standard deviation
  across images (0-255, at 64 x 64); it fails below SPREAD_MIN_RATIO times the real images' spread.
* tint drift: the outputs' mean colour is far (Euclidean distance of the mean RGB, 0-255) from
  the real target images' mean colour (above TINT_MAX).
* checkerboard energy: transposed convolutions of stride 2 leave patterns of period 2 and 4
  pixels; they show as isolated peaks of the power spectrum at multiples of 1/4 of the sampling
  rate. For each of those 15 frequencies, the power over the median power around it, averaged in
  logs over the images; the value is the largest. It fails above CHECKER_RATIO times the real
  images' own value (JPEG blocking gives real images some) and above CHECKER_MIN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .data.images import load_image

SIZE = 64
IDENTITY_MAX = 4.0
INVERSION_MAX = -0.3
SPREAD_MIN_RATIO = 0.35
TINT_MAX = 30.0
CHECKER_RATIO = 3.0
CHECKER_MIN = 30.0
NAMES = ("identity", "inversion", "mode_collapse", "tint", "checkerboard")
TITLES = {"identity": "identity collapse", "inversion": "colour inversion", "mode_collapse": "mode collapse",
          "tint": "tint drift", "checkerboard": "checkerboard energy"}
ADVICE = {
    "identity": "the generator copies its input. Usual in the first few thousand steps while the identity loss "
                "dominates: keep training. If it persists, lower --lambda-identity and check that the "
                "discriminators learn (loss_D not stuck at 0.25 for lsgan).",
    "inversion": "the outputs are colour negatives of the inputs, a known CycleGAN failure (inverting twice "
                 "closes the cycle). Start again with another --seed, with the identity loss on "
                 "(--lambda-identity 0.5), which rules the inversion out.",
    "mode_collapse": "the outputs hardly depend on the input. Check that both cycle weights are on "
                     "(--lambda-a/--lambda-b 10) and the history pool is used (--pool-size 50); resume from "
                     "checkpoints/best or start again with another --seed.",
    "tint": "the outputs' colours are shifted away from the real images'. Often passes with training; if it "
            "persists, use the identity loss (--lambda-identity 0.5), the paper's remedy for colour shifts.",
    "checkerboard": "a 2/4-pixel grid pattern from the transposed convolutions. It usually fades with training; "
                    "if it stays, lower --lr or compare the sample grids of checkpoints/best with the latest.",
}


@dataclass(frozen=True)
class Finding:
    name: str
    value: float
    reference: float | None
    ok: bool
    message: str

    @property
    def advice(self) -> str:
        return ADVICE[self.name]

    def as_dict(self) -> dict:
        return {**asdict(self), "advice": "" if self.ok else self.advice}


def as_uint8(item) -> np.ndarray:
    """Path / PIL image / uint8 array / tensor (C, H, W) in [-1, 1] -> uint8 (H, W, 3)."""
    if isinstance(item, (str, Path)):
        item = load_image(item, 3)
    if isinstance(item, Image.Image):
        return np.asarray(item.convert("RGB"), dtype=np.uint8)
    if isinstance(item, torch.Tensor):
        t = item.detach().float().cpu()
        if t.ndim != 3:
            raise ValueError(f"image tensors must be (C, H, W), got shape {tuple(t.shape)}")
        t = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        item = t
    arr = np.asarray(item)
    if arr.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]


def _small(arr: np.ndarray) -> np.ndarray:
    if arr.shape[:2] != (SIZE, SIZE):
        arr = np.asarray(Image.fromarray(arr).resize((SIZE, SIZE), Image.BILINEAR))
    return arr.astype(np.float64)


def _luma(arr: np.ndarray) -> np.ndarray:
    return arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114


def spread(images: Sequence[np.ndarray]) -> float:
    """Mean over pixels of the std across images (0-255, at 64 x 64): near 0 when all are alike."""
    return float(np.stack([_small(a) for a in images]).std(axis=0).mean())


def checker_log_ratios(arr: np.ndarray) -> np.ndarray:
    """log(power / median power of its 5 x 5 neighbourhood) at the 15 non-zero frequencies that are
    multiples of 1/4 of the sampling rate (about 0 for natural images, large for a grid pattern)."""
    g = _luma(arr.astype(np.float64))
    h, w = (g.shape[0] // 4) * 4, (g.shape[1] // 4) * 4
    if h < 16 or w < 16:
        return np.zeros(15)
    g = g[:h, :w] - g[:h, :w].mean()
    power = np.abs(np.fft.fft2(g)) ** 2
    logs = []
    for u in (0, h // 4, h // 2, 3 * h // 4):
        for v in (0, w // 4, w // 2, 3 * w // 4):
            if u == 0 and v == 0:
                continue
            rows = [(u + d) % h for d in range(-2, 3)]
            cols = [(v + d) % w for d in range(-2, 3)]
            around = np.delete(power[np.ix_(rows, cols)].ravel(), 12)  # the centre is the peak itself
            logs.append(np.log(max(power[u, v], 1e-12) / max(float(np.median(around)), 1e-12)))
    return np.array(logs)


def checker_energy(images: Sequence[np.ndarray]) -> float:
    """The strongest of the 15 grid frequencies, as its power over its surroundings, averaged (in logs)
    over the images: an artifact of the network sits at the same frequency in every output, while a
    natural texture's peak does not, so averaging first keeps real images near 1."""
    return float(np.exp(np.stack([checker_log_ratios(a) for a in images]).mean(axis=0).max()))


def detect(inputs: Iterable, outputs: Iterable, reals: Iterable) -> list[Finding]:
    """All five detectors on one direction: `outputs[i]` is the translation of `inputs[i]`; `reals`
    are real images of the target domain (any number, any size)."""
    ins = [as_uint8(x) for x in inputs]
    outs = [as_uint8(x) for x in outputs]
    real = [as_uint8(x) for x in reals]
    if len(ins) != len(outs) or len(outs) < 2 or len(real) < 2:
        raise ValueError(f"detectors need as many inputs as outputs (got {len(ins)} and {len(outs)}), "
                         f"and at least 2 outputs and 2 real images (got {len(real)})")
    small_in, small_out, small_real = [_small(a) for a in ins], [_small(a) for a in outs], [_small(a) for a in real]
    findings = []

    diff = float(np.mean([np.abs(o - i).mean() for o, i in zip(small_out, small_in)]))
    findings.append(Finding("identity", diff, IDENTITY_MAX, diff >= IDENTITY_MAX,
                            f"outputs differ from their inputs by {diff:.1f}/255 on average"))

    corrs = []
    for o, i in zip(small_out, small_in):
        a, b = _luma(o).ravel(), _luma(i).ravel()
        if a.std() > 1e-6 and b.std() > 1e-6:
            corrs.append(float(np.corrcoef(a, b)[0, 1]))
    corr = float(np.mean(corrs)) if corrs else 0.0
    findings.append(Finding("inversion", corr, INVERSION_MAX, corr >= INVERSION_MAX,
                            f"luminance correlation of outputs with inputs {corr:+.2f}"))

    out_spread, real_spread = spread(outs), spread(real)
    findings.append(Finding("mode_collapse", out_spread, real_spread, out_spread >= SPREAD_MIN_RATIO * real_spread,
                            f"output spread {out_spread:.1f} against {real_spread:.1f} for real images"))

    mean_out = np.mean([o.reshape(-1, 3).mean(0) for o in small_out], axis=0)
    mean_real = np.mean([r.reshape(-1, 3).mean(0) for r in small_real], axis=0)
    shift = mean_out - mean_real
    tint = float(np.linalg.norm(shift))
    channel = "RGB"[int(np.argmax(np.abs(shift)))]
    findings.append(Finding("tint", tint, TINT_MAX, tint <= TINT_MAX,
                            f"mean colour {tint:.1f}/255 from the real images' ({channel} "
                            f"{shift[int(np.argmax(np.abs(shift)))]:+.0f})"))

    out_checker, real_checker = checker_energy(outs), checker_energy(real)
    limit = max(CHECKER_RATIO * real_checker, CHECKER_MIN)
    findings.append(Finding("checkerboard", out_checker, real_checker, out_checker <= limit,
                            f"grid-frequency peaks {out_checker:.1f}x their surroundings against "
                            f"{real_checker:.1f}x in real images"))
    return findings


def findings_dict(findings: list[Finding]) -> dict[str, dict]:
    return {f.name: f.as_dict() for f in findings}


def failed(findings: dict[str, dict] | None) -> list[str]:
    return [name for name, f in (findings or {}).items() if isinstance(f, dict) and not f.get("ok", True)]


def print_findings(direction: str, findings: dict[str, dict] | None) -> None:
    """One console line per failed detector with its advice, or one line saying all passed."""
    if not findings:
        return
    bad = failed(findings)
    if not bad:
        print(f"{direction}: failure checks passed ({', '.join(TITLES[n] for n in findings if n in TITLES)})")
        return
    for name in bad:
        f = findings[name]
        print(f"{direction}: WARNING {TITLES.get(name, name)}: {f['message']}; {f['advice']}")
