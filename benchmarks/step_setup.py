"""The default (paper) training step on random tensors, shared by the step benchmarks."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from cyclegan.config import ModelConfig
from cyclegan.models import CycleGANNets
from cyclegan.pool import ImagePool
from cyclegan.precision import channels_last_pays
from cyclegan.training.distributed import ProcessGroup, wrap_for_training
from cyclegan.training.step import Optimizers, Pools


@dataclass
class StepInputs:
    nets: CycleGANNets  # as the step calls them (compiled when asked)
    optimizers: Optimizers
    pools: Pools
    real_a: torch.Tensor
    real_b: torch.Tensor
    autocast: Callable[[], ContextManager]


def build_step(crop: int, batch: int, generator: str, device: str, amp: bool = False,
               compile: bool = False, ngf: int = 64, ndf: int = 64) -> StepInputs:
    torch.manual_seed(0)
    dev = torch.device(device)
    nets = CycleGANNets.build(ModelConfig(generator=generator, ngf=ngf, ndf=ndf)).to(dev).train()
    if amp and channels_last_pays(dev):
        nets.to(memory_format=torch.channels_last)
    optimizers = Optimizers(
        gen=torch.optim.Adam(nets.generator_parameters(), lr=2e-4, betas=(0.5, 0.999)),
        disc=torch.optim.Adam(nets.discriminator_parameters(), lr=2e-4, betas=(0.5, 0.999)),
    )
    pools = Pools(ImagePool(50, seed=1), ImagePool(50, seed=2))
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    return StepInputs(
        nets=wrap_for_training(nets, ProcessGroup(), dev, compile=compile),
        optimizers=optimizers,
        pools=pools,
        real_a=torch.rand(batch, 3, crop, crop, device=dev) * 2 - 1,
        real_b=torch.rand(batch, 3, crop, crop, device=dev) * 2 - 1,
        autocast=autocast,
    )
