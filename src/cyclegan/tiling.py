"""Tiled translation that equals whole-image translation, for generators with a bounded receptive field.

Instance norm normalises each channel by the mean and variance over the WHOLE image, so
translating tiles independently changes the colours from tile to tile. Here every
instance-norm layer gets the whole image's statistics while only one tile (plus a halo)
is ever held in memory:

    for each norm layer k, in the order the network runs them:
        for each tile: run the network on the tile + halo up to layer k (layers before k
            normalised with their already known whole-image statistics), and merge the
            per-channel mean/variance of layer k's input over the tile's interior
    last pass, for each tile: run the whole network, keep the interior of the output.

Why it is exact: apart from the norms, every layer is local. An output pixel depends only on
input pixels within the receptive-field radius R, so a crop that extends R pixels past its
interior computes the interior exactly; where the crop edge is the image edge, the crop's
reflection/zero padding is the whole image's own. Crops start at multiples of the
generator's total stride, so strided convs sample the same grid as on the whole image.
Each tile's interior covers every layer's activation exactly once, so the merged statistics
are the whole image's (up to float rounding of the sums, done in float64).

Cost: pass k runs the network up to layer k, so the total is about (layers / 2 + 1) forward
passes over (tile + 2 R)^2 crops: a trade of time for memory. Memory follows the tile.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .nets.generators import ReflectionPad2d, ResnetBlock, ResnetGenerator

# Layers whose output pixel depends only on a neighbourhood of input pixels (or, for the
# norms, on statistics this module supplies); any other module makes a network un-tileable here.
_LOCAL = (nn.Sequential, ResnetGenerator, ResnetBlock, nn.Conv2d, nn.ConvTranspose2d, nn.ReflectionPad2d,
          ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Identity,
          nn.Dropout, nn.InstanceNorm2d, nn.BatchNorm2d)


def receptive_radius(net: nn.Module) -> tuple[int, int] | None:
    """(radius in input pixels, total stride) bounding how far an output pixel sees, or None
    when `net` holds a layer this module does not know to be local (e.g. the U-Net).

    Summing every conv's reach in module order is an upper bound for a chain with residual
    branches (a skip never sees farther than its branch); each strided layer adds one extra
    step of its coarser grid for the alignment of the sampling.
    """
    scale, radius, stride = 1, 0, 1
    for module in net.modules():
        if not isinstance(module, _LOCAL):
            return None
        if isinstance(module, nn.Conv2d):
            k, s, d = module.kernel_size[0], module.stride[0], module.dilation[0]
            radius += scale * (d * (k - 1) // 2 + (s if s > 1 else 0))
            scale *= s
            stride = max(stride, scale)
        elif isinstance(module, nn.ConvTranspose2d):
            k, s = module.kernel_size[0], module.stride[0]
            reach = math.ceil(k / s) + 1  # input positions feeding one output, plus alignment
            radius += scale * reach
            scale = max(1, scale // s)
    return radius, stride


@dataclass
class _Stats:
    """Per-(image, channel) count, mean and summed squared deviation, merged tile by tile (Chan et al.)."""

    count: int = 0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        x = x.double()
        n = x.shape[-2] * x.shape[-1]
        if n == 0:
            return
        mean = x.mean(dim=(-2, -1))
        m2 = ((x - mean[..., None, None]) ** 2).sum(dim=(-2, -1))
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.mean is not None and self.m2 is not None
        return self.mean, self.m2 / self.count  # biased variance, as instance norm uses


class _Stop(Exception):
    """Raised by the norm layer being measured: the rest of the forward pass is not needed."""


@dataclass
class _Pass:
    """What the norm layers do in the current pass over one crop."""

    measuring: int = -1  # index of the layer whose statistics are being gathered; -1: final pass
    interior: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right in crop input pixels
    crop_size: tuple[int, int] = (0, 0)
    stats: list[_Stats] = field(default_factory=list)
    known: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class _WholeImageNorm(nn.Module):
    """Instance norm with statistics of the whole image, supplied by the tiler."""

    def __init__(self, index: int, eps: float, state: _Pass):
        super().__init__()
        self.index, self.eps, self.state = index, eps, state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.state
        if self.index == state.measuring:
            # Crop and activation sizes are multiples of one another (crops on the stride grid).
            sy, sx = state.crop_size[0] // x.shape[-2], state.crop_size[1] // x.shape[-1]
            top, left, bottom, right = state.interior
            state.stats[self.index].add(x[..., top // sy:bottom // sy, left // sx:right // sx])
            raise _Stop
        mean, var = state.known[self.index]
        scale = torch.rsqrt(var + self.eps).to(x.dtype)
        return (x - mean.to(x.dtype)[..., None, None]) * scale[..., None, None]


class ExactTiler:
    """Runs `net` over tile x tile crops (plus halo) so that the result equals net(whole image).

    `net` must pass `receptive_radius`; its input height and width must be multiples of its
    stride (pad first, as Translator does). Instance norm layers without affine parameters are
    replaced in a private copy; batch norm (eval) and the other layers run unchanged.
    """

    def __init__(self, net: nn.Module, tile: int):
        reach = receptive_radius(net)
        if reach is None:
            raise ValueError("this network has layers that are not local; it cannot be tiled exactly")
        radius, self.stride = reach
        self.halo = -(-radius // self.stride) * self.stride
        self.tile = max(self.stride, tile // self.stride * self.stride)
        self.state = _Pass()
        self.net = copy.deepcopy(net).eval()
        self.norm_count = 0
        # Pre-order module order is the order the layers run in (chains and residual blocks).
        for name, child in list(self.net.named_modules()):
            if isinstance(child, nn.InstanceNorm2d):
                if child.affine or child.track_running_stats:
                    raise ValueError("instance norm with affine parameters or running statistics is not supported")
                parent_name, _, attr = name.rpartition(".")
                setattr(self.net.get_submodule(parent_name), attr, _WholeImageNorm(self.norm_count, child.eps, self.state))
                self.norm_count += 1

    def _crops(self, h: int, w: int):
        """(crop slices, interior within the crop, interior within the image) for every tile."""
        for top in range(0, h, self.tile):
            for left in range(0, w, self.tile):
                bottom, right = min(top + self.tile, h), min(left + self.tile, w)
                y0, x0 = max(0, top - self.halo), max(0, left - self.halo)
                y1, x1 = min(h, bottom + self.halo), min(w, right + self.halo)
                yield (y0, y1, x0, x1), (top - y0, left - x0, bottom - y0, right - x0), (top, left, bottom, right)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h % self.stride or w % self.stride:
            raise ValueError(f"height and width must be multiples of {self.stride}, got {h}x{w}")
        state = self.state
        state.stats, state.known = [], []
        for k in range(self.norm_count):
            state.measuring = k
            state.stats.append(_Stats())
            for (y0, y1, x0, x1), interior, _ in self._crops(h, w):
                state.interior, state.crop_size = interior, (y1 - y0, x1 - x0)
                try:
                    self.net(x[..., y0:y1, x0:x1])
                except _Stop:
                    pass
                else:  # pragma: no cover - every norm layer is reached by construction
                    raise RuntimeError(f"norm layer {k} was not reached")
            state.known.append(state.stats[k].mean_var())
        state.measuring = -1
        out: torch.Tensor | None = None
        for (y0, y1, x0, x1), (t, l, b, r), (top, left, bottom, right) in self._crops(h, w):
            state.interior, state.crop_size = (t, l, b, r), (y1 - y0, x1 - x0)
            piece = self.net(x[..., y0:y1, x0:x1])
            if out is None:
                out = torch.empty(n, piece.shape[1], h, w, dtype=piece.dtype, device=piece.device)
            out[..., top:bottom, left:right] = piece[..., t:b, l:r]
        state.stats, state.known = [], []
        assert out is not None
        return out
