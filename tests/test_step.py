import dataclasses

import pytest
import torch

from cyclegan.config import DataConfig, LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from cyclegan.methods import LOSS_NAMES, train_step
from cyclegan.training.state import TrainingState

TINY = ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4)


def _setup(seed=0, model=TINY, dtype=torch.float32):
    """The training loop's own set-up (`TrainingState.build`): seeded networks, Adam, pools of 2."""
    cfg = TrainConfig(model=model, data=DataConfig(crop_size=32), optim=OptimConfig(pool_size=2),
                      run=RunConfig(seed=seed))
    state = TrainingState.build(cfg, dtype=dtype)
    return state.nets, state.optimizers, state.pools


def _batch(seed=0, channels_a=3, channels_b=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(1, channels_a, 32, 32, generator=g, dtype=dtype) * 2 - 1
    return a, torch.rand(1, channels_b, 32, 32, generator=g, dtype=dtype) * 2 - 1


def _flat(net):
    return torch.cat([p.detach().flatten().clone() for p in net.parameters()])


def test_full_step_updates_all_four_networks_and_reports_every_term():
    nets, opts, pools = _setup()
    before = {k: _flat(v) for k, v in nets.by_name().items()}
    losses = train_step(nets, opts, pools, *_batch(), LossConfig())
    assert set(losses) == set(LOSS_NAMES)
    assert all(v.requires_grad is False and torch.isfinite(v) for v in losses.values())
    assert all(losses[k] > 0 for k in LOSS_NAMES)
    for name, net in nets.by_name().items():
        assert not torch.equal(before[name], _flat(net)), name
    # discriminators are trainable again after the step
    assert all(p.requires_grad for p in nets.disc_a.parameters())


def test_same_seed_same_losses():
    runs = []
    for _ in range(2):
        nets, opts, pools = _setup(seed=3)
        runs.append([train_step(nets, opts, pools, *_batch(i), LossConfig()) for i in range(3)])
    for a, b in zip(*runs):
        assert all(torch.equal(a[k], b[k]) for k in LOSS_NAMES)


def test_cycle_only_leaves_discriminators_alone():
    nets, opts, pools = _setup()
    d_before = _flat(nets.disc_a)
    losses = train_step(nets, opts, pools, *_batch(), LossConfig.for_ablation("cycle_only"))
    assert torch.equal(d_before, _flat(nets.disc_a))
    assert losses["gan_ab"] == 0 and losses["disc_a"] == 0 and losses["cycle_a"] > 0
    assert pools.fake_a.images == []


@pytest.mark.parametrize("name, zero, nonzero", [
    ("gan_only", {"cycle_a", "cycle_b", "idt_a", "idt_b"}, {"gan_ab", "disc_b"}),
    ("gan_forward", {"cycle_b", "idt_a", "idt_b"}, {"cycle_a", "gan_ab"}),
    ("gan_backward", {"cycle_a", "idt_a", "idt_b"}, {"cycle_b", "gan_ba"}),
])
def test_ablations_drop_their_terms(name, zero, nonzero):
    nets, opts, pools = _setup()
    losses = train_step(nets, opts, pools, *_batch(), LossConfig.for_ablation(name))
    assert all(losses[k] == 0 for k in zero)
    assert all(losses[k] > 0 for k in nonzero)


# Comparisons of two ways to compute a step run in float64. In float32 the two orders of
# summation differ by ~1e-7, and a ReLU whose input sits that close to 0 then takes the other
# branch: a few gradients change visibly, and Adam's first steps (about lr * sign(gradient))
# carry that into the weights. In float64 the rounding is ~1e-16 and the paths agree to 1e-10.


def test_generator_gradient_matches_the_written_objective():
    """The G update equals one Adam step on the objective computed by hand."""
    cfg = LossConfig(gan_mode="lsgan")
    nets, opts, pools = _setup(seed=5, dtype=torch.float64)
    ref_nets, _, _ = _setup(seed=5, dtype=torch.float64)
    real_a, real_b = _batch(7, dtype=torch.float64)
    train_step(nets, opts, pools, real_a, real_b, cfg)
    G, F, DA, DB = ref_nets.gen_ab, ref_nets.gen_ba, ref_nets.disc_a, ref_nets.disc_b
    fake_b, fake_a = G(real_a), F(real_b)
    loss = (
        ((DB(fake_b) - 1) ** 2).mean() + ((DA(fake_a) - 1) ** 2).mean()
        + 10 * (F(fake_b) - real_a).abs().mean() + 10 * (G(fake_a) - real_b).abs().mean()
        + 5 * (F(real_a) - real_a).abs().mean() + 5 * (G(real_b) - real_b).abs().mean()
    )
    opt = torch.optim.Adam(list(G.parameters()) + list(F.parameters()), lr=2e-4, betas=(0.5, 0.999))
    loss.backward()
    opt.step()
    torch.testing.assert_close(_flat(G), _flat(nets.gen_ab), atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(_flat(F), _flat(nets.gen_ba), atol=1e-9, rtol=1e-7)


def test_grayscale_domain_a():
    model = dataclasses.replace(TINY, input_nc=1)
    nets, opts, pools = _setup(model=model)
    losses = train_step(nets, opts, pools, *_batch(channels_a=1), LossConfig(lambda_identity=0.0))
    assert torch.isfinite(torch.stack(list(losses.values()))).all()


@pytest.mark.parametrize("norm, fuse", [("instance", True), ("instance", False), ("batch", True)])
def test_fast_step_matches_the_reference_step(norm, fuse):
    """train_step (fused passes, no host syncs) computes what the authors' structure computes:
    same losses, same weights after several Adam steps (float64, see above)."""
    from cyclegan.training.reference import reference_step

    model = dataclasses.replace(TINY, norm=norm)
    fast, ref = _setup(seed=11, model=model, dtype=torch.float64), _setup(seed=11, model=model, dtype=torch.float64)
    assert fast[0].samples_independent is (norm != "batch")
    for i in range(4):
        batch = _batch(20 + i, dtype=torch.float64)
        got = train_step(*fast, *batch, LossConfig(), fuse=fuse)  # fused passes run on GPUs only by default
        want = reference_step(*ref, *batch, LossConfig())
        for name in LOSS_NAMES:
            assert abs(float(got[name]) - want[name]) < 1e-9, (i, name)
    for name, net in fast[0].by_name().items():
        torch.testing.assert_close(_flat(net), _flat(ref[0].by_name()[name]), atol=1e-9, rtol=1e-7)
