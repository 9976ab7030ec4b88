"""The terms of the CycleGAN objective (paper, section 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import GanMode


def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: GanMode) -> torch.Tensor:
    """Adversarial loss of a discriminator's patch scores against an all-real or all-fake target.

    lsgan: mean (D(x) - t)^2, the least-squares form the paper trains with.
    vanilla: binary cross-entropy on logits, the original log-likelihood form.
    Computed in float32 so that a low-precision forward pass does not change the loss.
    """
    prediction = _at_least_float32(prediction)
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    if mode == "lsgan":
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    raise ValueError(f"unknown GAN loss {mode!r}")


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: the cycle-consistency and identity losses."""
    return F.l1_loss(_at_least_float32(output), _at_least_float32(target))


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    # bf16/fp16 activations are widened; float64 (precise tests) is kept.
    return t if t.dtype in (torch.float32, torch.float64) else t.float()
