"""The discriminators: PatchGAN (70x70 by default) and the 1x1 PixelGAN, chosen by name.

Layer order and attribute names follow the authors' code, so parameter counts
and state_dict keys are the same as theirs.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..config import ModelConfig, NormKind
from .init import init_weights
from .norm import conv_bias, norm_layer


class NLayerDiscriminator(nn.Module):
    """PatchGAN: C64-C128-C256-C512 then a 1-channel conv (paper, appendix 7.2).

    Each output pixel judges one input patch of `receptive_field(n_layers)`
    pixels square (70 for n_layers=3): a 256x256 input gives a 30x30 map.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: NormKind = "instance"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        # The first layer has no norm (as in the paper), so its conv keeps a bias.
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            # The last of these keeps the resolution and only widens the patch.
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges each pixel alone (colour statistics only)."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: NormKind = "instance"):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, kernel_size=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=bias),
            make_norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            # As in the authors' code, the output conv follows the norm's bias rule.
            nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(n_layers: int) -> int:
    """Side in input pixels of the patch one NLayerDiscriminator output sees."""
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    # Walk back from one output pixel through the 4x4 convs: two of stride 1,
    # then n_layers of stride 2.
    side = 1
    for stride in [1, 1] + [2] * n_layers:
        side = (side - 1) * stride + 4
    return side


def patch_map_size(size: int, n_layers: int) -> int:
    """Side of the PatchGAN's last normalised feature map for a square input of `size` pixels."""
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 1


DISCRIMINATORS: dict[str, Callable[[ModelConfig, int], nn.Module]] = {
    "basic": lambda cfg, in_channels: NLayerDiscriminator(in_channels, cfg.ndf, 3, cfg.norm),
    "n_layers": lambda cfg, in_channels: NLayerDiscriminator(in_channels, cfg.ndf, cfg.n_layers_d, cfg.norm),
    "pixel": lambda cfg, in_channels: PixelDiscriminator(in_channels, cfg.ndf, cfg.norm),
}


def build_discriminator(cfg: ModelConfig, in_channels: int) -> nn.Module:
    """The discriminator `cfg.discriminator`, initialised as `cfg.init_type` / `cfg.init_gain` say."""
    if cfg.discriminator not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {cfg.discriminator!r}; choose one of {', '.join(DISCRIMINATORS)}")
    net = DISCRIMINATORS[cfg.discriminator](cfg, in_channels)
    return init_weights(net, cfg.init_type, cfg.init_gain)
