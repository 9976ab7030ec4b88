"""BiGAN / ALI (Donahue et al., Dumoulin et al. 2017) with image -> image mappings: one
discriminator of pairs tells (a, G(a)) from (F(b), b); G and F are trained to swap its answer.
The discriminator lives in disc_b; there is no disc_a."""

from __future__ import annotations

import dataclasses

import torch

from ..config import TrainConfig
from ..losses import gan_loss
from ..models import CycleGANNets
from ..nets import build_discriminator, build_generator
from .base import Method, generator_update, require, set_requires_grad, without_identity


class BiGAN(Method):
    name = "bigan"
    title = "BiGAN/ALI"
    loss_names = ("gan_ab", "gan_ba", "disc")

    def defaults(self, cfg: TrainConfig) -> TrainConfig:
        r = dataclasses.replace
        cfg = without_identity(cfg)
        return r(cfg, loss=r(cfg.loss, gan_mode="vanilla"), optim=r(cfg.optim, pool_size=0))

    def check(self, cfg: TrainConfig) -> None:
        require(cfg.loss.lambda_identity == 0, "loss.lambda_identity",
                "must be 0 for bigan (only cyclegan has an identity loss); pass --lambda-identity 0")
        require(cfg.optim.pool_size == 0, "optim.pool_size",
                "must be 0 for bigan: its discriminator judges (input, translation) pairs, not a history of fakes")
        super().check(cfg)

    def build_nets(self, model, image_size):
        a, b = model.input_nc, model.output_nc
        return CycleGANNets(build_generator(model, a, b), build_generator(model, b, a), None,
                            build_discriminator(model, a + b), samples_independent=model.norm != "batch")

    def step(self, nets, optimizers, pools, real_a, real_b, cfg):
        G, F, D = nets.gen_ab, nets.gen_ba, nets.disc_b
        mode = cfg.gan_mode
        set_requires_grad([D], False)
        # BiGAN's (x, E(x)) and (G(z), z) pairs, with images in place of the latent code.
        encoded = torch.cat([real_a, G(real_a)], 1)
        decoded = torch.cat([F(real_b), real_b], 1)
        losses = {"gan_ab": gan_loss(D(encoded), False, mode), "gan_ba": gan_loss(D(decoded), True, mode)}
        generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"]))

        set_requires_grad([D], True)
        optimizers.disc.zero_grad(set_to_none=True)
        losses["disc"] = 0.5 * (gan_loss(D(encoded.detach()), True, mode) + gan_loss(D(decoded.detach()), False, mode))
        losses["disc"].backward()
        optimizers.disc.step()
        return {name: value.detach() for name, value in losses.items()}
