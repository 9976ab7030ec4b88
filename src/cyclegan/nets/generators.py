"""The generators: ResNet (the paper's) and U-Net (pix2pix's), chosen by name.

Layer order and attribute names follow the authors' pytorch-CycleGAN-and-pix2pix
code, so parameter counts and state_dict keys are the same as theirs (up to the
bias of convs with norm "none", see `conv_bias`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig, NormKind
from .init import init_weights
from .norm import conv_bias, norm_layer


class ReflectionPad2d(nn.ReflectionPad2d):
    """Reflection padding in the dtype it is given, also under autocast.

    CPU autocast lists reflection_pad2d as a float32 op, so under bfloat16 autocast every
    3x3 conv's input would be cast to float32 for the padding and straight back to
    bfloat16 for the conv, and the float32 copies held for the backward (measured: peak
    memory of the --amp training step at 256 px 1.95 -> 1.60 GB on a 2-core Intel Xeon,
    step time unchanged). Padding only copies values, so the forward result is the same; in
    the backward, the few border gradients that sum three or four terms can differ by
    one bfloat16 rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding, added back to the input."""

    def __init__(self, channels: int, norm: NormKind = "instance", dropout: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=bias),
            make_norm(channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, n_blocks x R256, u128, u64, c7s1-out (paper, appendix 7.2).

    Works on any H and W that are multiples of 4 (two stride-2 downsamplings).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: NormKind = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        # Reflection padding instead of zero padding avoids border artefacts.
        layers: list[nn.Module] = [
            ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                make_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            ReflectionPad2d(3),
            # No norm follows, so this conv always needs its bias.
            nn.Conv2d(ngf, out_channels, kernel_size=7, bias=True),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipBlock(nn.Module):
    """One level of the U-Net: downsample, run `submodule`, upsample, concat the skip.

    `outer_nc` channels come in (unless `in_channels` says otherwise) and go out;
    `inner_nc` are handed to the submodule, which returns 2 * inner_nc (its own
    input concatenated to its output), except the innermost block which has no
    submodule.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: NormKind = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        if innermost == (submodule is not None):
            raise ValueError("the innermost block, and only it, has no submodule")
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        in_channels = outer_nc if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        down_relu = nn.LeakyReLU(0.2)
        up_relu = nn.ReLU()

        if outermost:
            # Tanh maps to the image range; no norm follows, so the conv keeps its bias.
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, submodule, up_relu, up_conv, nn.Tanh()]
        elif innermost:
            # No norm on the innermost (1x1 for the intended input size) feature map.
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [down_relu, down_conv, up_relu, up_conv, make_norm(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [down_relu, down_conv, make_norm(inner_nc), submodule, up_relu, up_conv, make_norm(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The authors' first LeakyReLU runs in place, so their skip connection
        # carries LeakyReLU(x) rather than x. We reproduce that result without
        # mutating the input.
        return torch.cat([F.leaky_relu(x, 0.2), self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: `num_downs` stride-2 levels with skip connections.

    H and W must be multiples of 2 ** num_downs (128 for unet_128, 256 for
    unet_256). At exactly that size the innermost map is 1x1, but no norm layer
    sees it: the smallest normalised map is 2x2, so instance norm works even at
    batch size 1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int,
        ngf: int = 64,
        norm: NormKind = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        block = partial(UnetSkipBlock, norm=norm)
        # Built inside out: the innermost level first, each wrapped by the next.
        unet = block(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            unet = block(ngf * 8, ngf * 8, submodule=unet, dropout=dropout)
        unet = block(ngf * 4, ngf * 8, submodule=unet)
        unet = block(ngf * 2, ngf * 4, submodule=unet)
        unet = block(ngf, ngf * 2, submodule=unet)
        self.model = block(out_channels, ngf, in_channels=in_channels, submodule=unet, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class GeneratorSpec:
    """How to build one named generator, and the input sides it accepts."""

    make: Callable[..., nn.Module]  # (in_channels, out_channels, *, ngf, norm, dropout) -> net
    size_multiple: int


GENERATORS: dict[str, GeneratorSpec] = {
    "resnet_9blocks": GeneratorSpec(partial(ResnetGenerator, n_blocks=9), 4),
    "resnet_6blocks": GeneratorSpec(partial(ResnetGenerator, n_blocks=6), 4),
    "unet_128": GeneratorSpec(partial(UnetGenerator, num_downs=7), 2**7),
    "unet_256": GeneratorSpec(partial(UnetGenerator, num_downs=8), 2**8),
}


def _spec(arch: str) -> GeneratorSpec:
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator {arch!r}; choose one of {', '.join(GENERATORS)}")
    return GENERATORS[arch]


def size_multiple(arch: str) -> int:
    """The multiple that input height and width must have for generator `arch`."""
    return _spec(arch).size_multiple


def build_generator(cfg: ModelConfig, in_channels: int, out_channels: int) -> nn.Module:
    """The generator `cfg.generator`, initialised as `cfg.init_type` / `cfg.init_gain` say."""
    net = _spec(cfg.generator).make(in_channels, out_channels, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout)
    return init_weights(net, cfg.init_type, cfg.init_gain)
