"""The methods of the package, by name: CycleGAN and the paper's baselines (section 5.1).

Adding a method: one file in this package with a `Method` subclass, and one line below.
"""

from __future__ import annotations

import dataclasses

from ..config import ConfigError, TrainConfig
from ..config import Method as MethodName
from .base import Method, Optimizers, Pools, discriminator_step, set_requires_grad
from .bigan import BiGAN
from .cogan import CoGAN
from .cyclegan import LOSS_NAMES, CycleGAN, train_step
from .pix2pix import Pix2Pix
from .simgan import SimGAN

METHODS: dict[MethodName, Method] = {
    "cyclegan": CycleGAN(),
    "pix2pix": Pix2Pix(),
    "simgan": SimGAN(),
    "bigan": BiGAN(),
    "cogan": CoGAN(),
}


def method_of(cfg: TrainConfig) -> Method:
    try:
        return METHODS[cfg.model.method]
    except KeyError:
        raise ConfigError(f"model.method must be one of {', '.join(METHODS)}, got {cfg.model.method!r}") from None


def check_config(cfg: TrainConfig) -> TrainConfig:
    """The ranges (`TrainConfig.validate`) and what the method and its networks need; returns cfg."""
    cfg.validate()
    method_of(cfg).check(cfg)
    return cfg


def with_method_defaults(base: TrainConfig, method: MethodName) -> TrainConfig:
    """`base` switched to `method`, with the settings that method is defined by.

    The command line applies this before the options a user types, so those still win.
    The settings follow the baselines' own papers, as section 5.1 of CycleGAN used them.
    """
    switched = dataclasses.replace(base, model=dataclasses.replace(base.model, method=method))
    return method_of(switched).defaults(switched)


__all__ = [
    "LOSS_NAMES", "METHODS", "BiGAN", "CoGAN", "CycleGAN", "Method", "Optimizers", "Pix2Pix", "Pools", "SimGAN",
    "check_config", "discriminator_step", "method_of", "set_requires_grad", "train_step", "with_method_defaults",
]
