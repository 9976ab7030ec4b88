import math

import torch

from cyclegan.losses import gan_loss, l1_loss
from cyclegan.pool import ImagePool
from cyclegan.config import OptimConfig
from cyclegan.training.schedule import lr_factor


def test_lsgan_values():
    pred = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    assert gan_loss(pred, True, "lsgan").item() == (1 + 0 + 1 + 4) / 4
    assert gan_loss(pred, False, "lsgan").item() == (0 + 1 + 4 + 1) / 4


def test_vanilla_is_bce_on_logits():
    pred = torch.tensor([0.0, 2.0])
    real = gan_loss(pred, True, "vanilla").item()
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert abs(real - expected) < 1e-6
    fake = gan_loss(pred, False, "vanilla").item()
    assert abs(fake - (math.log(2) + math.log(1 + math.exp(2))) / 2) < 1e-6


def test_l1():
    assert l1_loss(torch.zeros(2, 3), torch.full((2, 3), -0.5)).item() == 0.5


def test_pool_disabled_passes_through():
    pool = ImagePool(0)
    x = torch.randn(2, 3, 4, 4)
    assert pool.query(x) is x


def test_pool_fills_then_mixes_history():
    pool = ImagePool(3, seed=0)
    first = [torch.full((1, 1, 2, 2), float(i)) for i in range(3)]
    for img in first:
        assert torch.equal(pool.query(img), img)  # while filling, the new image is returned
    assert len(pool.images) == 3
    returned = [pool.query(torch.full((1, 1, 2, 2), 100.0 + i)).flatten()[0].item() for i in range(200)]
    history = sum(1 for i, v in enumerate(returned) if v != 100.0 + i)
    assert 60 < history < 140  # about half the draws come from the history
    assert len(pool.images) == 3
    assert any(v < 100 for v in returned)  # the first images come back from the history too


def test_pool_state_round_trip_is_exact():
    a = ImagePool(4, seed=1)
    for i in range(6):
        a.query(torch.randn(2, 3, 2, 2))
    b = ImagePool(4, seed=99)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 3, 2, 2)
    assert torch.equal(a.query(x), b.query(x))
    assert all(torch.equal(p, q) for p, q in zip(a.images, b.images))


def test_linear_schedule_matches_authors_formula():
    cfg = OptimConfig()  # 100 + 100
    assert lr_factor(1, cfg) == 1.0
    assert lr_factor(100, cfg) == 1.0
    assert abs(lr_factor(101, cfg) - (1 - 1 / 101)) < 1e-12
    assert abs(lr_factor(150, cfg) - (1 - 50 / 101)) < 1e-12
    assert abs(lr_factor(200, cfg) - 1 / 101) < 1e-12


def test_step_and_cosine_schedules():
    step = OptimConfig(lr_policy="step", lr_decay_iters=50)
    assert lr_factor(1, step) == 1.0 and lr_factor(50, step) == 1.0
    assert abs(lr_factor(51, step) - 0.1) < 1e-12 and abs(lr_factor(101, step) - 0.01) < 1e-12
    cos = OptimConfig(lr_policy="cosine", n_epochs=50, n_epochs_decay=50)
    assert lr_factor(1, cos) == 1.0
    assert abs(lr_factor(51, cos) - 0.5) < 1e-12
    assert lr_factor(100, cos) < 0.001
