"""pix2pix (Isola et al. 2017), paired a <-> b, trained both ways in one run:
    G: gan(D_B(a, G(a)), real) + lambda_l1 * |G(a) - b|;  D_B: (a, b) real, (a, G(a)) fake.
Its discriminators are conditional: disc_b judges an (a, b) pair stacked on channels,
disc_a a (b, a) pair.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import TrainConfig
from ..losses import gan_loss, l1_loss
from ..models import CycleGANNets
from ..nets import build_discriminator, build_generator
from .base import Method, generator_update, require, set_requires_grad, without_identity


class Pix2Pix(Method):
    name = "pix2pix"
    title = "pix2pix"
    loss_names = ("gan_ab", "gan_ba", "l1_ab", "l1_ba", "disc_a", "disc_b")

    def defaults(self, cfg: TrainConfig) -> TrainConfig:
        # U-Net + conditional PatchGAN, log-likelihood GAN + 100 * L1, no pool, dropout as the noise.
        # pix2pix's batch norm at batch size 1 is instance norm (its section 3.3), which is our default.
        r = dataclasses.replace
        cfg = without_identity(cfg)
        return r(cfg, model=r(cfg.model, generator="unet_256", dropout=True),
                 data=r(cfg.data, dataset_mode="aligned", paired=True),
                 loss=r(cfg.loss, gan_mode="vanilla", lambda_l1=100.0), optim=r(cfg.optim, pool_size=0))

    def check(self, cfg: TrainConfig) -> None:
        require(cfg.data.dataset_mode == "aligned" and cfg.data.paired, "model.method",
                "pix2pix trains on paired images: use --dataset-mode aligned --paired "
                "(ROOT/train/*.jpg, A|B side by side)")
        require(cfg.loss.lambda_identity == 0, "loss.lambda_identity",
                "must be 0 for pix2pix (only cyclegan has an identity loss); pass --lambda-identity 0")
        super().check(cfg)

    def build_nets(self, model, image_size):
        a, b = model.input_nc, model.output_nc
        return CycleGANNets(build_generator(model, a, b), build_generator(model, b, a),
                            build_discriminator(model, b + a), build_discriminator(model, a + b),
                            samples_independent=model.norm != "batch")

    def step(self, nets, optimizers, pools, real_a, real_b, cfg):
        G, F, D_A, D_B = nets.gen_ab, nets.gen_ba, nets.disc_a, nets.disc_b
        mode = cfg.gan_mode
        set_requires_grad([D_A, D_B], False)
        fake_b, fake_a = G(real_a), F(real_b)
        # Conditional discriminators see the input beside the output, stacked on channels.
        pair_ab, pair_ba = torch.cat([real_a, fake_b], 1), torch.cat([real_b, fake_a], 1)
        losses = {
            "gan_ab": gan_loss(D_B(pair_ab), True, mode),
            "gan_ba": gan_loss(D_A(pair_ba), True, mode),
            "l1_ab": l1_loss(fake_b, real_b),
            "l1_ba": l1_loss(fake_a, real_a),
        }
        generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"])
                         + cfg.lambda_l1 * (losses["l1_ab"] + losses["l1_ba"]))

        set_requires_grad([D_A, D_B], True)
        optimizers.disc.zero_grad(set_to_none=True)
        pooled_ab = pools.fake_b.query(pair_ab.detach())
        pooled_ba = pools.fake_a.query(pair_ba.detach())
        losses["disc_b"] = 0.5 * (gan_loss(D_B(torch.cat([real_a, real_b], 1)), True, mode)
                                  + gan_loss(D_B(pooled_ab), False, mode))
        losses["disc_a"] = 0.5 * (gan_loss(D_A(torch.cat([real_b, real_a], 1)), True, mode)
                                  + gan_loss(D_A(pooled_ba), False, mode))
        (losses["disc_a"] + losses["disc_b"]).backward()
        optimizers.disc.step()
        return {name: value.detach() for name, value in losses.items()}
