"""A CycleGAN iteration structured like the authors' `cycle_gan_model.py`, for comparison only.

Every network pass is its own call, the discriminators' gradients are switched off and on,
and every loss is read back to the host each step (their `get_current_losses`). It computes
what `train_step` computes; the benchmarks time both side by side and a test checks that
they agree. Training uses `train_step`.
"""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..losses import gan_loss, l1_loss
from ..models import CycleGANNets
from ..methods import Optimizers, Pools, set_requires_grad


def reference_step(nets: CycleGANNets, optimizers: Optimizers, pools: Pools, real_a: torch.Tensor,
                   real_b: torch.Tensor, cfg: LossConfig) -> dict[str, float]:
    G, F, D_A, D_B = nets.gen_ab, nets.gen_ba, nets.disc_a, nets.disc_b
    mode, lam_a, lam_b, lam_idt = cfg.gan_mode, cfg.lambda_a, cfg.lambda_b, cfg.lambda_identity
    # forward()
    fake_b = G(real_a)
    rec_a = F(fake_b)
    fake_a = F(real_b)
    rec_b = G(fake_a)
    # optimize_parameters(): generators
    set_requires_grad([D_A, D_B], False)
    optimizers.gen.zero_grad()
    idt_b = G(real_b)
    idt_a = F(real_a)
    loss_idt_b = l1_loss(idt_b, real_b) * lam_b * lam_idt
    loss_idt_a = l1_loss(idt_a, real_a) * lam_a * lam_idt
    loss_g_ab = gan_loss(D_B(fake_b), True, mode)
    loss_g_ba = gan_loss(D_A(fake_a), True, mode)
    loss_cycle_a = l1_loss(rec_a, real_a) * lam_a
    loss_cycle_b = l1_loss(rec_b, real_b) * lam_b
    loss_g = loss_g_ab + loss_g_ba + loss_cycle_a + loss_cycle_b + loss_idt_a + loss_idt_b
    loss_g.backward()
    optimizers.gen.step()
    # discriminators
    set_requires_grad([D_A, D_B], True)
    optimizers.disc.zero_grad()
    pooled_b = pools.fake_b.query(fake_b)
    loss_d_b = 0.5 * (gan_loss(D_B(real_b), True, mode) + gan_loss(D_B(pooled_b.detach()), False, mode))
    loss_d_b.backward()
    pooled_a = pools.fake_a.query(fake_a)
    loss_d_a = 0.5 * (gan_loss(D_A(real_a), True, mode) + gan_loss(D_A(pooled_a.detach()), False, mode))
    loss_d_a.backward()
    optimizers.disc.step()
    # get_current_losses(): one host read-back per term, every step
    return {
        "gan_ab": loss_g_ab.item(), "gan_ba": loss_g_ba.item(),
        "cycle_a": loss_cycle_a.item() / lam_a, "cycle_b": loss_cycle_b.item() / lam_b,
        "idt_a": loss_idt_a.item() / (lam_a * lam_idt), "idt_b": loss_idt_b.item() / (lam_b * lam_idt),
        "disc_a": loss_d_a.item(), "disc_b": loss_d_b.item(),
    }
