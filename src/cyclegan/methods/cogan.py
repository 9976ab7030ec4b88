"""CoGAN (Liu & Tuzel 2016): both generators draw from one latent z, sharing all layers but the
last; G: gan(D_A(g_a(z)), real) + gan(D_B(g_b(z)), real); D as CycleGAN's. Its generators
and discriminators are views over coupled networks that share weights; translating an image
searches its latent code (`LatentInversion`), so it exports to no feed-forward format."""

from __future__ import annotations

import dataclasses

import torch

from ..config import TrainConfig
from ..losses import gan_loss
from ..models import CycleGANNets
from ..nets.coupled import build_coupled
from .base import Method, discriminator_step, generator_update, require, set_requires_grad, without_identity


def _is_power_of_two(n: int) -> bool:
    return n >= 8 and n & (n - 1) == 0


class CoGAN(Method):
    name = "cogan"
    title = "CoGAN"
    loss_names = ("gan_a", "gan_b", "disc_a", "disc_b")
    distributed = False  # its two generators share one module
    exportable = False

    def defaults(self, cfg: TrainConfig) -> TrainConfig:
        # DCGAN-style networks: batch norm needs more than one image per batch to give
        # test-time statistics that match training.
        r = dataclasses.replace
        cfg = without_identity(cfg)
        return r(cfg, model=r(cfg.model, norm="batch"), loss=r(cfg.loss, gan_mode="vanilla"),
                 optim=r(cfg.optim, pool_size=0, batch_size=8))

    def check(self, cfg: TrainConfig) -> None:
        require(cfg.loss.lambda_identity == 0, "loss.lambda_identity",
                "must be 0 for cogan (only cyclegan has an identity loss); pass --lambda-identity 0")
        require(_is_power_of_two(cfg.data.crop_size), "data.crop_size",
                f"must be a power of two for cogan (its generators draw images from a 4x4 map), got {cfg.data.crop_size}")
        super().check(cfg)

    def build_nets(self, model, image_size):
        return CycleGANNets(*build_coupled(model, image_size), samples_independent=model.norm != "batch")

    def translation_generator(self, model, direction, image_size):
        gen_ab, gen_ba, _, _ = build_coupled(model, image_size)
        return gen_ab if direction == "AtoB" else gen_ba

    def size_multiple(self, model):
        return 1  # the inversion resizes any input itself

    def step(self, nets, optimizers, pools, real_a, real_b, cfg):
        coupled = nets.gen_ab.coupled  # a LatentInversion view; training draws from z directly
        set_requires_grad([nets.disc_a, nets.disc_b], False)
        z = torch.randn(real_a.shape[0], coupled.latent_dim, 1, 1, device=real_a.device)
        fake_a, fake_b = coupled(z)
        losses = {
            "gan_a": gan_loss(nets.disc_a(fake_a), True, cfg.gan_mode),
            "gan_b": gan_loss(nets.disc_b(fake_b), True, cfg.gan_mode),
        }
        generator_update(optimizers, cfg.gan_weight * (losses["gan_a"] + losses["gan_b"]))
        losses["disc_a"], losses["disc_b"] = discriminator_step(nets, optimizers, pools, real_a, real_b,
                                                                fake_a, fake_b, cfg)
        return {name: value.detach() for name, value in losses.items()}
