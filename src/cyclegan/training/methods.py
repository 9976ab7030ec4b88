"""What the loop needs to know about each trainable method: its step and its logged loss terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import LossConfig, Method
from ..models import CycleGANNets
from .baselines import (
    BIGAN_LOSSES,
    COGAN_LOSSES,
    PIX2PIX_LOSSES,
    SIMGAN_LOSSES,
    bigan_step,
    cogan_step,
    pix2pix_step,
    simgan_step,
)
from .step import LOSS_NAMES, Optimizers, Pools, train_step

StepFn = Callable[[CycleGANNets, Optimizers, Pools, torch.Tensor, torch.Tensor, LossConfig], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class MethodSpec:
    step: StepFn
    loss_names: tuple[str, ...]  # the loss_log.csv columns, in order


METHODS: dict[Method, MethodSpec] = {
    "cyclegan": MethodSpec(train_step, LOSS_NAMES),
    "pix2pix": MethodSpec(pix2pix_step, PIX2PIX_LOSSES),
    "simgan": MethodSpec(simgan_step, SIMGAN_LOSSES),
    "bigan": MethodSpec(bigan_step, BIGAN_LOSSES),
    "cogan": MethodSpec(cogan_step, COGAN_LOSSES),
}
