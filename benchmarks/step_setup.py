"""The default (paper) training step on random tensors, shared by the step benchmarks."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch

from cyclegan.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from cyclegan.methods import Optimizers, Pools
from cyclegan.models import CycleGANNets
from cyclegan.training.distributed import ProcessGroup, wrap_for_training
from cyclegan.training.state import TrainingState


@dataclass
class StepInputs:
    nets: CycleGANNets  # as the step calls them (compiled when asked)
    optimizers: Optimizers
    pools: Pools
    real_a: torch.Tensor
    real_b: torch.Tensor
    autocast: Callable[[], ContextManager]


def build_step(crop: int, batch: int, generator: str, device: str, amp: bool = False,
               compile: bool = False, ngf: int = 64, ndf: int = 64,
               channels_last: bool = False) -> StepInputs:
    """channels_last: the networks in that memory format (the training loop does not use it)."""
    dev = torch.device(device)
    # The training loop's own set-up (seed 0, Adam(2e-4, (0.5, 0.999)), pools of 50).
    cfg = TrainConfig(model=ModelConfig(generator=generator, ngf=ngf, ndf=ndf), data=DataConfig(crop_size=crop),
                      optim=OptimConfig(batch_size=batch))
    state = TrainingState.build(cfg, dev)
    if channels_last:
        state.nets.to(memory_format=torch.channels_last)
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if amp else contextlib.nullcontext
    return StepInputs(
        nets=wrap_for_training(state.nets, ProcessGroup(), dev, compile=compile),
        optimizers=state.optimizers,
        pools=state.pools,
        real_a=torch.rand(batch, 3, crop, crop, device=dev) * 2 - 1,
        real_b=torch.rand(batch, 3, crop, crop, device=dev) * 2 - 1,
        autocast=autocast,
    )
