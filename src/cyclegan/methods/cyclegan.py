"""CycleGAN (Zhu et al. 2017): one iteration is a generator update, then a discriminator update.

Reads like the paper's objective. With a = real image of domain A, b = of B:
  G step:  L = w_gan * [gan(D_B(G(a)), real) + gan(D_A(F(b)), real)]
             + lambda_a * |F(G(a)) - a| + lambda_b * |G(F(b)) - b|
             + lambda_idt * (lambda_a * |F(a) - a| + lambda_b * |G(b) - b|)
  D step:  D_A: 0.5 * [gan(D_A(a), real) + gan(D_A(pool_a(F(b))), fake)], same for D_B.
A weight of 0 skips its term (and the passes only it needs), which gives the
paper's ablations as settings.
"""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..losses import gan_loss, l1_loss
from ..models import CycleGANNets
from .base import Method, Optimizers, Pools, discriminator_step, fuse_passes, passes, set_requires_grad

LOSS_NAMES = ("gan_ab", "gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "disc_a", "disc_b")


def _backward(loss: torch.Tensor) -> None:
    if loss.requires_grad:  # a chain whose terms are all switched off has nothing to give
        loss.backward()


def train_step(
    nets: CycleGANNets,
    optimizers: Optimizers,
    pools: Pools,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    cfg: LossConfig,
    fuse: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Run one iteration in place; return the detached loss terms (no host sync).

    fuse: run the passes that allow it in pairs (see `fuse_passes`; None: on GPUs only).
    """
    G, F, D_A, D_B = nets.gen_ab, nets.gen_ba, nets.disc_a, nets.disc_b
    use_gan = cfg.gan_weight > 0
    together = fuse_passes(nets, real_a.device, fuse)
    zero = real_a.new_zeros(())
    losses: dict[str, torch.Tensor] = {}

    # ---- generators G and F
    # The objective splits into two chains that share no activations, each backpropagated
    # as soon as it is built: the gradient is the same sum, but only one chain's activations
    # are held at a time (4 generator passes instead of 6: a third less peak memory).
    set_requires_grad([D_A, D_B], False)  # D only supplies gradients w.r.t. its input here
    optimizers.gen.zero_grad(set_to_none=True)
    idt_weight_a = cfg.lambda_identity * cfg.lambda_a
    idt_weight_b = cfg.lambda_identity * cfg.lambda_b
    # chain 1: a -> G -> F, with both identity passes riding along in the same calls
    # (G(a) with G(b), F(G(a)) with F(a)) when the norm keeps samples apart
    fake_b, same_b = passes(G, real_a, real_b if idt_weight_b > 0 else None, together)
    rec_a, same_a = passes(F, fake_b if cfg.lambda_a > 0 else None, real_a if idt_weight_a > 0 else None,
                           together)
    losses["gan_ab"] = gan_loss(D_B(fake_b), True, cfg.gan_mode) if use_gan else zero
    losses["cycle_a"] = l1_loss(rec_a, real_a) if rec_a is not None else zero
    losses["idt_a"] = l1_loss(same_a, real_a) if same_a is not None else zero
    losses["idt_b"] = l1_loss(same_b, real_b) if same_b is not None else zero
    _backward(cfg.gan_weight * losses["gan_ab"] + cfg.lambda_a * losses["cycle_a"]
              + idt_weight_a * losses["idt_a"] + idt_weight_b * losses["idt_b"])
    # chain 2: b -> F -> G
    fake_a = F(real_b)
    losses["gan_ba"] = gan_loss(D_A(fake_a), True, cfg.gan_mode) if use_gan else zero
    losses["cycle_b"] = l1_loss(G(fake_a), real_b) if cfg.lambda_b > 0 else zero
    _backward(cfg.gan_weight * losses["gan_ba"] + cfg.lambda_b * losses["cycle_b"])
    optimizers.gen.step()

    # ---- discriminators D_A and D_B, on fakes drawn from the history pools
    if use_gan:
        losses["disc_a"], losses["disc_b"] = discriminator_step(nets, optimizers, pools, real_a, real_b,
                                                                fake_a, fake_b, cfg, fuse)
    else:
        losses["disc_a"] = losses["disc_b"] = zero

    return {name: value.detach() for name, value in losses.items()}


class CycleGAN(Method):
    name = "cyclegan"
    title = "CycleGAN"
    loss_names = LOSS_NAMES

    def step(self, nets, optimizers, pools, real_a, real_b, cfg):
        return train_step(nets, optimizers, pools, real_a, real_b, cfg)
