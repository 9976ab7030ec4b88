"""The four networks of a CycleGAN, held in typed fields.

Names follow what each network does: `gen_ab` is the paper's G (A -> B),
`gen_ba` its F (B -> A), `disc_a` its D_X (judges images of domain A) and
`disc_b` its D_Y (judges domain B). The authors' code calls G_A/G_B/D_A/D_B,
where their D_A judges domain B; we do not follow that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .config import ModelConfig
from .nets import build_discriminator, build_generator


@dataclass
class CycleGANNets:
    gen_ab: nn.Module
    gen_ba: nn.Module
    disc_a: nn.Module
    disc_b: nn.Module

    @classmethod
    def build(cls, cfg: ModelConfig) -> "CycleGANNets":
        return cls(
            gen_ab=build_generator(cfg, cfg.input_nc, cfg.output_nc),
            gen_ba=build_generator(cfg, cfg.output_nc, cfg.input_nc),
            disc_a=build_discriminator(cfg, cfg.input_nc),
            disc_b=build_discriminator(cfg, cfg.output_nc),
        )

    def by_name(self) -> dict[str, nn.Module]:
        """The networks under their file names in a checkpoint."""
        return {"gen_ab": self.gen_ab, "gen_ba": self.gen_ba, "disc_a": self.disc_a, "disc_b": self.disc_b}

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.gen_ab.parameters()
        yield from self.gen_ba.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.disc_a.parameters()
        yield from self.disc_b.parameters()

    def to(self, device: torch.device | str) -> "CycleGANNets":
        for net in self.by_name().values():
            net.to(device)
        return self

    def train(self, mode: bool = True) -> "CycleGANNets":
        for net in self.by_name().values():
            net.train(mode)
        return self
