"""The networks of a run, held in typed fields, for CycleGAN and the paper's baselines.

Names follow what each network does: `gen_ab` is the paper's G (A -> B), `gen_ba` its
F (B -> A), `disc_a` its D_X (judges images of domain A) and `disc_b` its D_Y (judges
domain B). The authors' code calls them G_A/G_B/D_A/D_B, where their D_A judges
domain B; we do not follow that. Which networks fill the slots is the method's choice
(`cyclegan.methods`): BiGAN/ALI, for one, has no disc_a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from torch import nn

from .config import ModelConfig


@dataclass
class CycleGANNets:
    gen_ab: nn.Module
    gen_ba: nn.Module
    disc_a: nn.Module | None
    disc_b: nn.Module
    # False when a layer mixes the samples of a batch (batch norm): then two inputs of one
    # network must not share a forward call, or each would change the other's output.
    samples_independent: bool = True

    @classmethod
    def build(cls, cfg: ModelConfig, image_size: int = 256) -> "CycleGANNets":
        """The networks `cfg.method` trains; `image_size` (the crop size) matters to CoGAN only."""
        from .methods import METHODS  # the methods build on this class, so they are looked up late

        return METHODS[cfg.method].build_nets(cfg, image_size)

    def by_name(self) -> dict[str, nn.Module]:
        """The networks under their file names in a checkpoint."""
        nets = {"gen_ab": self.gen_ab, "gen_ba": self.gen_ba, "disc_a": self.disc_a, "disc_b": self.disc_b}
        return {name: net for name, net in nets.items() if net is not None}

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        yield from _unique_parameters(self.gen_ab, self.gen_ba)

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        yield from _unique_parameters(self.disc_a, self.disc_b)

    def to(self, *args, **kwargs) -> "CycleGANNets":
        """nn.Module.to on every network (a device, a dtype, memory_format=...)."""
        for net in self.by_name().values():
            net.to(*args, **kwargs)
        return self

    def train(self, mode: bool = True) -> "CycleGANNets":
        for net in self.by_name().values():
            net.train(mode)
        return self


def _unique_parameters(*nets: nn.Module | None) -> Iterator[nn.Parameter]:
    # CoGAN's two views hold the same coupled module; an optimiser must see each weight once.
    seen: set[int] = set()
    for net in nets:
        if net is None:
            continue
        for p in net.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p
