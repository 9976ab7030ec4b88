"""Each baseline's step equals one Adam step on its objective written out by hand (float64),
as tests/test_step.py shows for CycleGAN. Swapping a target (|G(a) - b| for |G(a) - a|) or a
real/fake label in a method's file changes the weights it produces, and fails here."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as nnf

from cyclegan.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
from cyclegan.methods import METHODS, with_method_defaults
from cyclegan.training.state import TrainingState


def _gan(prediction: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    target = torch.full_like(prediction, 1.0 if real else 0.0)
    if mode == "lsgan":
        return ((prediction - target) ** 2).mean()
    return nnf.binary_cross_entropy_with_logits(prediction, target)


def _l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def _flat(nets) -> dict[str, torch.Tensor]:
    return {name: torch.cat([p.detach().flatten() for p in net.parameters()]) for name, net in nets.by_name().items()}


def _config(method: str) -> TrainConfig:
    base = TrainConfig(model=ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4),
                       data=DataConfig(load_size=36, crop_size=32), optim=OptimConfig(pool_size=0))
    cfg = with_method_defaults(base, method)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, generator="resnet_6blocks", dropout=False))  # U-Net: 256 px


def _reference_step(method: str, ref: TrainingState, a: torch.Tensor, b: torch.Tensor, cfg: TrainConfig,
                    z_seed: int) -> dict[str, float]:
    """The method's objective as its paper writes it, and one Adam step on G, then on D."""
    nets, loss, mode = ref.nets, cfg.loss, cfg.loss.gan_mode
    G, F, D_A, D_B = nets.gen_ab, nets.gen_ba, nets.disc_a, nets.disc_b
    adam = dict(lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2))
    opt_g = torch.optim.Adam(list(nets.generator_parameters()), **adam)
    opt_d = torch.optim.Adam(list(nets.discriminator_parameters()), **adam)
    if method == "pix2pix":
        fake_b, fake_a = G(a), F(b)
        terms = {"gan_ab": _gan(D_B(torch.cat([a, fake_b], 1)), True, mode),
                 "gan_ba": _gan(D_A(torch.cat([b, fake_a], 1)), True, mode),
                 "l1_ab": _l1(fake_b, b), "l1_ba": _l1(fake_a, a)}
        g = loss.gan_weight * (terms["gan_ab"] + terms["gan_ba"]) + loss.lambda_l1 * (terms["l1_ab"] + terms["l1_ba"])
        d_terms = lambda: {  # noqa: E731
            "disc_b": 0.5 * (_gan(D_B(torch.cat([a, b], 1)), True, mode)
                             + _gan(D_B(torch.cat([a, fake_b.detach()], 1)), False, mode)),
            "disc_a": 0.5 * (_gan(D_A(torch.cat([b, a], 1)), True, mode)
                             + _gan(D_A(torch.cat([b, fake_a.detach()], 1)), False, mode))}
    elif method == "simgan":
        fake_b, fake_a = G(a), F(b)
        terms = {"gan_ab": _gan(D_B(fake_b), True, mode), "gan_ba": _gan(D_A(fake_a), True, mode),
                 "reg_a": _l1(fake_b, a), "reg_b": _l1(fake_a, b)}
        g = loss.gan_weight * (terms["gan_ab"] + terms["gan_ba"]) + loss.lambda_l1 * (terms["reg_a"] + terms["reg_b"])
        d_terms = lambda: {  # noqa: E731
            "disc_a": 0.5 * (_gan(D_A(a), True, mode) + _gan(D_A(fake_a.detach()), False, mode)),
            "disc_b": 0.5 * (_gan(D_B(b), True, mode) + _gan(D_B(fake_b.detach()), False, mode))}
    elif method == "bigan":
        encoded, decoded = torch.cat([a, G(a)], 1), torch.cat([F(b), b], 1)
        # the generators are trained to swap the discriminator's answer: (a, G(a)) is "real" to D
        terms = {"gan_ab": _gan(D_B(encoded), False, mode), "gan_ba": _gan(D_B(decoded), True, mode)}
        g = loss.gan_weight * (terms["gan_ab"] + terms["gan_ba"])
        d_terms = lambda: {  # noqa: E731
            "disc": 0.5 * (_gan(D_B(encoded.detach()), True, mode) + _gan(D_B(decoded.detach()), False, mode))}
    else:  # cogan
        coupled = G.coupled
        torch.manual_seed(z_seed)
        fake_a, fake_b = coupled(torch.randn(a.shape[0], coupled.latent_dim, 1, 1, dtype=a.dtype))
        terms = {"gan_a": _gan(D_A(fake_a), True, mode), "gan_b": _gan(D_B(fake_b), True, mode)}
        g = loss.gan_weight * (terms["gan_a"] + terms["gan_b"])
        d_terms = lambda: {  # noqa: E731
            "disc_a": 0.5 * (_gan(D_A(a), True, mode) + _gan(D_A(fake_a.detach()), False, mode)),
            "disc_b": 0.5 * (_gan(D_B(b), True, mode) + _gan(D_B(fake_b.detach()), False, mode))}
    opt_g.zero_grad()
    g.backward()
    opt_g.step()
    opt_d.zero_grad()
    discs = d_terms()
    sum(discs.values()).backward()
    opt_d.step()
    return {k: float(v.detach()) for k, v in {**terms, **discs}.items()}


@pytest.mark.parametrize("method", ["pix2pix", "simgan", "bigan", "cogan"])
def test_step_is_one_adam_step_on_the_written_objective(method):
    cfg = _config(method)
    step = TrainingState.build(cfg, dtype=torch.float64)
    ref = TrainingState.build(cfg, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    b = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    torch.set_default_dtype(torch.float64)  # CoGAN draws its latent code in the default dtype
    try:
        torch.manual_seed(11)
        got = METHODS[method].step(step.nets, step.optimizers, step.pools, a, b, cfg.loss)
        want = _reference_step(method, ref, a, b, cfg, z_seed=11)
    finally:
        torch.set_default_dtype(torch.float32)
    assert set(got) == set(want) == set(METHODS[method].loss_names)
    for name in want:
        assert abs(float(got[name]) - want[name]) < 1e-9, name
    mine, theirs = _flat(step.nets), _flat(ref.nets)
    for name in mine:
        torch.testing.assert_close(mine[name], theirs[name], atol=1e-9, rtol=1e-7, msg=name)


def test_swapped_target_is_caught(monkeypatch):
    """The check above can fail: pix2pix with its L1 against the input instead of the target."""
    import cyclegan.methods.pix2pix as pix2pix

    real_l1 = pix2pix.l1_loss
    monkeypatch.setattr(pix2pix, "l1_loss", lambda out, target: real_l1(out, -target))
    with pytest.raises(AssertionError):
        test_step_is_one_adam_step_on_the_written_objective("pix2pix")
