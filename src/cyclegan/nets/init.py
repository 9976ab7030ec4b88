"""Weight initialisation as in the authors' code (normal N(0, 0.02) by default)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..config import InitKind

# Layers whose weight gets the chosen scheme; everything else keeps PyTorch's default
# except BatchNorm, handled apart.
_WEIGHTED = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear,
)


def _scheme(kind: InitKind, gain: float) -> Callable[[torch.Tensor], object]:
    if kind == "normal":
        return lambda w: nn.init.normal_(w, 0.0, gain)
    if kind == "xavier":
        return lambda w: nn.init.xavier_normal_(w, gain=gain)
    if kind == "kaiming":
        # The authors ignore the gain here; so do we.
        return lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in")
    if kind == "orthogonal":
        return lambda w: nn.init.orthogonal_(w, gain=gain)
    raise ValueError(f"unknown init {kind!r}; choose one of normal, xavier, kaiming, orthogonal")


def init_weights(net: nn.Module, kind: InitKind = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise `net` in place and return it.

    Conv/Linear weights follow `kind`, their biases start at zero; BatchNorm
    scales start at N(1, gain) and shifts at zero, as in the authors' code.
    """
    init = _scheme(kind, gain)  # raises on an unknown kind before touching the net
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, _WEIGHTED):
                init(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d) and module.affine:
                nn.init.normal_(module.weight, 1.0, gain)
                nn.init.zeros_(module.bias)
    return net
