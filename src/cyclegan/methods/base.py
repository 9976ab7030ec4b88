"""What every method shares: the optimisers and pools it is stepped with, the pieces of a
GAN update used by more than one method, and the `Method` base class.

A method (CycleGAN or a baseline of the paper) is one object in one file of this package:
its defaults, its config checks, its networks, its step, its loss names and what it can
do. Adding one is that file plus one line in `methods/__init__.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..config import ConfigError, Direction, LossConfig, ModelConfig, TrainConfig
from ..losses import gan_loss
from ..models import CycleGANNets
from ..nets import build_discriminator, build_generator, patch_map_size, size_multiple
from ..pool import ImagePool


@dataclass
class Optimizers:
    gen: torch.optim.Optimizer
    disc: torch.optim.Optimizer


@dataclass
class Pools:
    fake_a: ImagePool  # history of F(b), shown to disc_a
    fake_b: ImagePool  # history of G(a), shown to disc_b


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def fuse_passes(nets: CycleGANNets, device: torch.device, fuse: bool | None = None) -> bool:
    """Whether two passes through one network run as one call of twice the batch.

    That computes the same as two calls only when no layer mixes samples: instance norm
    or no norm, not batch norm (`CycleGANNets.samples_independent`). None decides by
    device: on a GPU one call halves the kernel launches of a batch-1 step; on a CPU,
    where a launch costs next to nothing, the doubled working set measured slower (18.9
    against 16.9 s per step at 256 px, one thread of a 2-core Intel Xeon) and the
    concatenation costs memory.
    """
    if not nets.samples_independent:
        return False
    return device.type == "cuda" if fuse is None else fuse


def passes(net: nn.Module, x: torch.Tensor | None, y: torch.Tensor | None, together: bool
           ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """net(x) and net(y) (None for a None input), in one call when `together` (see fuse_passes)."""
    if x is None or y is None:
        return (net(x) if x is not None else None), (net(y) if y is not None else None)
    if not together or x.shape[1:] != y.shape[1:]:
        return net(x), net(y)
    out_x, out_y = net(torch.cat([x, y])).split([x.shape[0], y.shape[0]])
    return out_x, out_y


def generator_update(optimizers: Optimizers, loss: torch.Tensor) -> None:
    optimizers.gen.zero_grad(set_to_none=True)
    loss.backward()
    optimizers.gen.step()


def discriminator_step(
    nets: CycleGANNets,
    optimizers: Optimizers,
    pools: Pools,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    fake_a: torch.Tensor,
    fake_b: torch.Tensor,
    cfg: LossConfig,
    fuse: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Update D_A (real a vs pooled fake a) and D_B alike; return their losses."""
    D_A, D_B = nets.disc_a, nets.disc_b
    together = fuse_passes(nets, real_a.device, fuse)
    set_requires_grad([D_A, D_B], True)
    optimizers.disc.zero_grad(set_to_none=True)
    pooled_a = pools.fake_a.query(fake_a.detach())
    pooled_b = pools.fake_b.query(fake_b.detach())
    on_real_a, on_fake_a = passes(D_A, real_a, pooled_a, together)
    on_real_b, on_fake_b = passes(D_B, real_b, pooled_b, together)
    # Halved so D learns more slowly than G (paper, section 4).
    disc_a = 0.5 * (gan_loss(on_real_a, True, cfg.gan_mode) + gan_loss(on_fake_a, False, cfg.gan_mode))
    disc_b = 0.5 * (gan_loss(on_real_b, True, cfg.gan_mode) + gan_loss(on_fake_b, False, cfg.gan_mode))
    (disc_a + disc_b).backward()
    optimizers.disc.step()
    return disc_a, disc_b


def crops(cfg: TrainConfig) -> bool:
    """Whether training images reach the networks at exactly --crop-size."""
    return cfg.data.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop")


class Method:
    """One trainable method. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]  # as in --method
    title: ClassVar[str]  # as in the papers
    loss_names: ClassVar[tuple[str, ...]]  # the loss_log.csv columns, in order
    distributed: ClassVar[bool] = True  # may train under torchrun
    exportable: ClassVar[bool] = True  # a generator is one feed-forward network (ONNX, TorchScript)

    # ---- defaults and checks

    def defaults(self, cfg: TrainConfig) -> TrainConfig:
        """`cfg` with the settings this method is defined by (the CLI applies it before the user's options)."""
        return cfg

    def check(self, cfg: TrainConfig) -> None:
        """ConfigError (one line naming the field) for settings this method cannot train with."""
        self._check_networks(cfg)

    def _check_networks(self, cfg: TrainConfig) -> None:
        model, data = cfg.model, cfg.data
        if crops(cfg):
            multiple = size_multiple(model.generator)
            if data.crop_size % multiple:
                fits = max(multiple, data.crop_size - data.crop_size % multiple)
                raise ConfigError(f"data.crop_size {data.crop_size} does not fit --generator {model.generator}, "
                                  f"which needs a multiple of {multiple}; use --crop-size {fits} "
                                  f"(and --load-size >= it) or another --generator")
        if model.discriminator != "pixel":
            layers = 3 if model.discriminator == "basic" else model.n_layers_d
            if patch_map_size(data.crop_size, layers) < 2:
                smallest = next(s for s in range(4, 4096) if patch_map_size(s, layers) >= 2)
                raise ConfigError(f"data.crop_size {data.crop_size} is too small for a {layers}-layer PatchGAN; "
                                  f"use at least {smallest}")

    # ---- networks

    def build_nets(self, model: ModelConfig, image_size: int) -> CycleGANNets:
        a, b = model.input_nc, model.output_nc
        return CycleGANNets(build_generator(model, a, b), build_generator(model, b, a),
                            build_discriminator(model, a), build_discriminator(model, b),
                            samples_independent=model.norm != "batch")

    def translation_generator(self, model: ModelConfig, direction: Direction, image_size: int) -> nn.Module:
        """The (untrained) generator that maps images in `direction`."""
        a, b = model.input_nc, model.output_nc
        return build_generator(model, a, b) if direction == "AtoB" else build_generator(model, b, a)

    def size_multiple(self, model: ModelConfig) -> int:
        """What translation pads the input sides up to."""
        return size_multiple(model.generator)

    # ---- one iteration

    def step(self, nets: CycleGANNets, optimizers: Optimizers, pools: Pools, real_a: torch.Tensor,
             real_b: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
        """Update the networks in place on one batch; return the detached loss terms (no host sync)."""
        raise NotImplementedError


def without_identity(cfg: TrainConfig) -> TrainConfig:
    return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, lambda_identity=0.0))


def require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{field} {message}")
