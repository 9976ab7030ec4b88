"""CoGAN's networks (Liu & Tuzel, "Coupled Generative Adversarial Networks", 2016).

Two generators draw an image of each domain from one latent code; they share every
layer but the last, so the same code gives corresponding images (the "joint
distribution"). The two discriminators share every layer but the first. CoGAN has no
image -> image mapping; CycleGAN's paper (section 5.1) translates x by searching the
code z whose domain-A image is closest to x and drawing the domain-B image of that z.
`LatentInversion` is that search, wrapped as a module so that it slots in wherever a
generator translates images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .discriminators import NLayerDiscriminator
from .init import init_weights
from .norm import conv_bias, norm_layer


class CoupledGenerators(nn.Module):
    """z (N, latent, 1, 1) -> an image of each domain, (N, C, size, size), DCGAN-style."""

    def __init__(self, latent_dim: int, channels_a: int, channels_b: int, size: int, ngf: int, norm: str):
        super().__init__()
        n_up = int(math.log2(size)) - 2  # 4x4 after the projection, then doubling up to `size`
        if 2 ** (n_up + 2) != size or n_up < 1:
            raise ValueError(f"CoGAN image size must be a power of two >= 8, got {size}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        channels = ngf * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, channels, kernel_size=4, stride=1, padding=0, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, kernel_size=4, stride=2, padding=1, bias=bias),
                make_norm(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        self.latent_dim = latent_dim
        self.size = size
        self.shared = nn.Sequential(*layers)
        self.head_a = nn.Sequential(nn.ConvTranspose2d(channels, channels_a, 4, 2, 1), nn.Tanh())
        self.head_b = nn.Sequential(nn.ConvTranspose2d(channels, channels_b, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(z)
        return self.head_a(h), self.head_b(h)

    def draw(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        head = self.head_a if domain == "a" else self.head_b
        return head(self.shared(z))


class CoupledDiscriminators(nn.Module):
    """A 70x70 PatchGAN per domain whose layers after the first are one shared stack."""

    def __init__(self, channels_a: int, channels_b: int, ndf: int, n_layers: int, norm: str):
        super().__init__()
        template = NLayerDiscriminator(channels_a, ndf, n_layers, norm).model
        self.stem_a = nn.Sequential(nn.Conv2d(channels_a, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.stem_b = nn.Sequential(nn.Conv2d(channels_b, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))
        self.shared = nn.Sequential(*list(template)[2:])

    def judge(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        stem = self.stem_a if domain == "a" else self.stem_b
        return self.shared(stem(x))


class CoupledDiscriminator(nn.Module):
    """One domain's view of `CoupledDiscriminators`: behaves like any discriminator."""

    def __init__(self, coupled: CoupledDiscriminators, domain: str):
        super().__init__()
        self.coupled = coupled
        self.domain = domain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.coupled.judge(x, self.domain)


class LatentInversion(nn.Module):
    """Translate by inversion: z* = argmin_z |draw(z, source) - x|, output draw(z*, target).

    Input of any size: it is resized to the generators' size for the search and the
    output resized back. The search runs with gradients on z only, also inside
    `torch.no_grad()`, and leaves the generators' weights and gradients untouched.
    """

    def __init__(self, coupled: CoupledGenerators, source: str, steps: int, lr: float = 0.05):
        super().__init__()
        self.coupled = coupled
        self.source = source
        self.target = "b" if source == "a" else "a"
        self.steps = steps
        self.lr = lr

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """The latent codes (N, latent, 1, 1) whose source-domain images best match x."""
        size = self.coupled.size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.detach()
        # Start from the mean code, the same for every input: translations are deterministic.
        z = torch.zeros(x.shape[0], self.coupled.latent_dim, 1, 1, device=x.device, requires_grad=True)
        optimizer = torch.optim.Adam([z], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                loss = (self.coupled.draw(z, self.source) - x).abs().mean()
                (grad,) = torch.autograd.grad(loss, z)
                z.grad = grad
                optimizer.step()
        return z.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.coupled.draw(self.invert(x), self.target)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


def build_coupled(cfg: ModelConfig, image_size: int) -> tuple[LatentInversion, LatentInversion,
                                                               CoupledDiscriminator, CoupledDiscriminator]:
    """gen_ab, gen_ba, disc_a, disc_b of a CoGAN: views over two shared modules."""
    gens = init_weights(CoupledGenerators(cfg.latent_dim, cfg.input_nc, cfg.output_nc, image_size, cfg.ngf, cfg.norm),
                        cfg.init_type, cfg.init_gain)
    n_layers = 3 if cfg.discriminator == "basic" else cfg.n_layers_d
    discs = init_weights(CoupledDiscriminators(cfg.input_nc, cfg.output_nc, cfg.ndf, n_layers, cfg.norm),
                         cfg.init_type, cfg.init_gain)
    return (
        LatentInversion(gens, "a", cfg.inversion_steps),
        LatentInversion(gens, "b", cfg.inversion_steps),
        CoupledDiscriminator(discs, "a"),
        CoupledDiscriminator(discs, "b"),
    )
