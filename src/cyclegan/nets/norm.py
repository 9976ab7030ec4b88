"""Normalisation layers, chosen by name."""

from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from ..config import NormKind

NormFactory = Callable[[int], nn.Module]


def _no_norm(channels: int) -> nn.Module:
    # An Identity (rather than leaving the layer out) keeps the Sequential indices,
    # hence the state_dict keys, the same for every norm kind.
    return nn.Identity()


def norm_layer(kind: NormKind) -> NormFactory:
    """A constructor `channels -> layer` for the normalisation `kind`.

    Instance norm is the paper's choice for CycleGAN (no affine part, statistics
    of the image itself at test time); batch norm is pix2pix's default.
    """
    if kind == "instance":
        return partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "none":
        return _no_norm
    raise ValueError(f"unknown norm {kind!r}; choose one of instance, batch, none")


def conv_bias(kind: NormKind) -> bool:
    """Whether a conv followed by a `kind` norm layer should carry a bias.

    Batch norm subtracts the per-channel mean and adds its own shift, so a bias
    before it is dead weight. Instance norm without affine has no shift, so the
    conv keeps its bias (the authors do the same). With no norm at all the bias
    is the only shift left: the authors' code drops it there (it tests for
    InstanceNorm only), a bug we do not copy.
    """
    if kind not in ("instance", "batch", "none"):
        raise ValueError(f"unknown norm {kind!r}; choose one of instance, batch, none")
    return kind != "batch"
