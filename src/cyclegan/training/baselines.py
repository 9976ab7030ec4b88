"""One iteration of each baseline of the paper (section 5.1), beside CycleGAN's `train_step`.

Every step has CycleGAN's shape: a generator update, then a discriminator update, and
returns its detached loss terms. With a = real image of domain A, b = of B:

- pix2pix (Isola et al. 2017), paired a <-> b, trained both ways in one run:
    G: gan(D_B(a, G(a)), real) + lambda_l1 * |G(a) - b|; D_B: (a, b) real, (a, G(a)) fake.
- SimGAN (Shrivastava et al. 2017): G: gan(D_B(G(a)), real) + lambda_l1 * |G(a) - a|,
    the "self-regularisation" that keeps the output close to its input; D as CycleGAN's.
- BiGAN / ALI (Donahue et al., Dumoulin et al. 2017) with image -> image mappings: one
    discriminator of pairs tells (a, G(a)) from (F(b), b); G and F are trained to swap its answer.
- CoGAN (Liu & Tuzel 2016): both generators draw from one latent z, sharing all layers but
    the last; G: gan(D_A(g_a(z)), real) + gan(D_B(g_b(z)), real); D as CycleGAN's.
"""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..losses import gan_loss, l1_loss
from ..models import CycleGANNets
from .step import Optimizers, Pools, discriminator_step, set_requires_grad

PIX2PIX_LOSSES = ("gan_ab", "gan_ba", "l1_ab", "l1_ba", "disc_a", "disc_b")
SIMGAN_LOSSES = ("gan_ab", "gan_ba", "reg_a", "reg_b", "disc_a", "disc_b")
BIGAN_LOSSES = ("gan_ab", "gan_ba", "disc")
COGAN_LOSSES = ("gan_a", "gan_b", "disc_a", "disc_b")


def _generator_update(optimizers: Optimizers, loss: torch.Tensor) -> None:
    optimizers.gen.zero_grad(set_to_none=True)
    loss.backward()
    optimizers.gen.step()


def pix2pix_step(nets: CycleGANNets, optimizers: Optimizers, pools: Pools,
                 real_a: torch.Tensor, real_b: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
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
    _generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"])
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


def simgan_step(nets: CycleGANNets, optimizers: Optimizers, pools: Pools,
                real_a: torch.Tensor, real_b: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    G, F = nets.gen_ab, nets.gen_ba
    set_requires_grad([nets.disc_a, nets.disc_b], False)
    fake_b, fake_a = G(real_a), F(real_b)
    losses = {
        "gan_ab": gan_loss(nets.disc_b(fake_b), True, cfg.gan_mode),
        "gan_ba": gan_loss(nets.disc_a(fake_a), True, cfg.gan_mode),
        "reg_a": l1_loss(fake_b, real_a),
        "reg_b": l1_loss(fake_a, real_b),
    }
    _generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"])
                      + cfg.lambda_l1 * (losses["reg_a"] + losses["reg_b"]))
    losses["disc_a"], losses["disc_b"] = discriminator_step(nets, optimizers, pools, real_a, real_b,
                                                            fake_a, fake_b, cfg)
    return {name: value.detach() for name, value in losses.items()}


def bigan_step(nets: CycleGANNets, optimizers: Optimizers, pools: Pools,
               real_a: torch.Tensor, real_b: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    G, F, D = nets.gen_ab, nets.gen_ba, nets.disc_b
    mode = cfg.gan_mode
    set_requires_grad([D], False)
    # BiGAN's (x, E(x)) and (G(z), z) pairs, with images in place of the latent code.
    encoded = torch.cat([real_a, G(real_a)], 1)
    decoded = torch.cat([F(real_b), real_b], 1)
    losses = {"gan_ab": gan_loss(D(encoded), False, mode), "gan_ba": gan_loss(D(decoded), True, mode)}
    _generator_update(optimizers, cfg.gan_weight * (losses["gan_ab"] + losses["gan_ba"]))

    set_requires_grad([D], True)
    optimizers.disc.zero_grad(set_to_none=True)
    losses["disc"] = 0.5 * (gan_loss(D(encoded.detach()), True, mode) + gan_loss(D(decoded.detach()), False, mode))
    losses["disc"].backward()
    optimizers.disc.step()
    return {name: value.detach() for name, value in losses.items()}


def cogan_step(nets: CycleGANNets, optimizers: Optimizers, pools: Pools,
               real_a: torch.Tensor, real_b: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    coupled = nets.gen_ab.coupled  # a LatentInversion view; training draws from z directly
    set_requires_grad([nets.disc_a, nets.disc_b], False)
    z = torch.randn(real_a.shape[0], coupled.latent_dim, 1, 1, device=real_a.device)
    fake_a, fake_b = coupled(z)
    losses = {
        "gan_a": gan_loss(nets.disc_a(fake_a), True, cfg.gan_mode),
        "gan_b": gan_loss(nets.disc_b(fake_b), True, cfg.gan_mode),
    }
    _generator_update(optimizers, cfg.gan_weight * (losses["gan_a"] + losses["gan_b"]))
    losses["disc_a"], losses["disc_b"] = discriminator_step(nets, optimizers, pools, real_a, real_b,
                                                            fake_a, fake_b, cfg)
    return {name: value.detach() for name, value in losses.items()}
