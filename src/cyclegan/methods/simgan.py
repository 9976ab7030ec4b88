"""SimGAN (Shrivastava et al. 2017): G: gan(D_B(G(a)), real) + lambda_l1 * |G(a) - a|, the
"self-regularisation" that keeps the output close to its input; D as CycleGAN's."""

from __future__ import annotations

import dataclasses

from ..config import TrainConfig
from ..losses import gan_loss, l1_loss
from .base import Method, discriminator_step, generator_update, require, set_requires_grad, without_identity


class SimGAN(Method):
    name = "simgan"
    title = "SimGAN"
    loss_names = ("gan_ab", "gan_ba", "reg_a", "reg_b", "disc_a", "disc_b")

    def defaults(self, cfg: TrainConfig) -> TrainConfig:
        # SimGAN keeps the history pool (it introduced it); the L1 to the input gets the cycle
        # loss's weight, so the only change from CycleGAN is what that L1 compares with.
        cfg = without_identity(cfg)
        return dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, lambda_l1=10.0))

    def check(self, cfg: TrainConfig) -> None:
        require(cfg.loss.lambda_identity == 0, "loss.lambda_identity",
                "must be 0 for simgan (only cyclegan has an identity loss); pass --lambda-identity 0")
        require(cfg.model.input_nc == cfg.model.output_nc, "model.method",
                "simgan compares each output with its input, so both domains need the same --input-nc/--output-nc")
        super().check(cfg)

    def step(self, nets, optimizers, pools, real_a, real_b, cfg):
        G, F = nets.gen_ab, nets.gen_ba
        set_requires_grad([nets.disc_a, nets.disc_b], False)
        fake_b, fake_a = G(real_a), F(real_b)
        losses = {
            "gan_ab": gan_loss(nets.disc_b(fake_b), True, cfg.gan_mode),
            "gan_ba": gan_loss(nets.disc_a(fake_a), True, cfg.gan_mode),
            "reg_a": l1_loss(fake_b, real_a),
            "reg_b": l1_loss(fake_a, real_b),
        }
        generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"])
                         + cfg.lambda_l1 * (losses["reg_a"] + losses["reg_b"]))
        losses["disc_a"], losses["disc_b"] = discriminator_step(nets, optimizers, pools, real_a, real_b,
                                                                fake_a, fake_b, cfg)
        return {name: value.detach() for name, value in losses.items()}
