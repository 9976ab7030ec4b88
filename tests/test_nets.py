import dataclasses

import pytest
import torch
from torch import nn

from cyclegan.config import ModelConfig
from cyclegan.nets import (
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
    norm_layer,
    size_multiple,
)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_match_the_authors():
    assert n_params(ResnetGenerator(3, 3, 64, 9)) == 11_378_179  # the paper's "about 11.4 M"
    assert n_params(ResnetGenerator(3, 3, 64, 6)) == 7_837_699
    assert n_params(NLayerDiscriminator(3, 64, 3)) == 2_764_737


@pytest.mark.parametrize("in_nc, out_nc", [(3, 3), (1, 3), (3, 1), (1, 1)])
@pytest.mark.parametrize("arch", ["resnet_6blocks", "resnet_9blocks"])
def test_resnet_shapes_and_range(arch, in_nc, out_nc):
    net = build_generator(ModelConfig(generator=arch, ngf=4), in_nc, out_nc)
    y = net(torch.randn(2, in_nc, 36, 52) * 3)  # any multiple of 4, not square
    assert y.shape == (2, out_nc, 36, 52)
    assert y.abs().max() <= 1


@pytest.mark.parametrize("arch, size", [("unet_128", 128), ("unet_256", 256)])
def test_unet_shapes(arch, size):
    net = build_generator(ModelConfig(generator=arch, ngf=2, norm="batch"), 3, 1)
    assert net(torch.randn(2, 3, size, size)).shape == (2, 1, size, size)
    assert size_multiple(arch) == size


def test_unet_skip_keeps_the_input():
    # an in-place LeakyReLU at a block's start must not alter what the skip concatenates
    net = UnetGenerator(3, 3, num_downs=7, ngf=2, norm="batch").eval()
    x = torch.randn(1, 3, 128, 128)
    x_copy = x.clone()
    net(x)
    assert torch.equal(x, x_copy)


@pytest.mark.parametrize("size, out", [(256, 30), (128, 14), (64, 6)])
def test_patchgan_output_size(size, out):
    d = build_discriminator(ModelConfig(ndf=4), 3)
    assert d(torch.randn(1, 3, size, size)).shape == (1, 1, out, out)


def test_n_layers_and_pixel_discriminators():
    d = build_discriminator(ModelConfig(ndf=4, discriminator="n_layers", n_layers_d=2), 1)
    assert d(torch.randn(1, 1, 64, 64)).shape == (1, 1, 14, 14)
    p = build_discriminator(ModelConfig(ndf=4, discriminator="pixel"), 3)
    assert isinstance(p, PixelDiscriminator)
    assert p(torch.randn(2, 3, 9, 7)).shape == (2, 1, 9, 7)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("init", ["normal", "xavier", "kaiming", "orthogonal"])
def test_every_norm_and_init_builds_and_runs(norm, init):
    cfg = ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4, norm=norm, init_type=init)
    g, d = build_generator(cfg, 3, 3), build_discriminator(cfg, 3)
    assert torch.isfinite(d(g(torch.randn(2, 3, 32, 32)))).all()
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert has_bn == (norm == "batch")


def test_normal_init_has_the_papers_std():
    conv = nn.Conv2d(64, 64, 3)
    init_weights(conv, "normal", 0.02)
    assert abs(conv.weight.std().item() - 0.02) < 0.001
    assert conv.bias.abs().max() == 0


def test_dropout_flag():
    with_dropout = build_generator(ModelConfig(generator="resnet_6blocks", ngf=4, dropout=True), 3, 3)
    without = build_generator(ModelConfig(generator="resnet_6blocks", ngf=4), 3, 3)
    assert sum(isinstance(m, nn.Dropout) for m in with_dropout.modules()) == 6
    assert not any(isinstance(m, nn.Dropout) for m in without.modules())


def test_unknown_names_raise():
    with pytest.raises(ValueError):
        norm_layer("group")
    with pytest.raises(ValueError):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")
    with pytest.raises(ValueError):
        build_generator(dataclasses.replace(ModelConfig(), generator="vit"), 3, 3)
