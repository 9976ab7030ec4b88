"""Networks: shapes, parameter counts against the authors' code, norms, init, factories."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cyclegan.config import ModelConfig
from cyclegan.nets import (
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    conv_bias,
    init_weights,
    norm_layer,
    receptive_field,
    size_multiple,
)
from cyclegan.nets.generators import ReflectionPad2d, UnetSkipBlock


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # These tensors are tiny: waking a thread pool costs more than it saves,
    # badly so when the cores are shared with other work.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count(cls: type[nn.Module], *args: object, **kwargs: object) -> int:
    # Built on the meta device: no memory, no init, just shapes.
    with torch.device("meta"):
        return n_params(cls(*args, **kwargs))


def count_modules(net: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


# ------------------------------------------------------------ generators


@pytest.mark.parametrize(
    "arch, side", [("resnet_9blocks", 16), ("resnet_6blocks", 16), ("unet_128", 128), ("unet_256", 256)]
)
@pytest.mark.parametrize("in_nc, out_nc", [(3, 3), (1, 3), (3, 1), (1, 1)])
def test_generator_shapes_and_tanh_range(arch: str, side: int, in_nc: int, out_nc: int) -> None:
    net = build_generator(ModelConfig(generator=arch, ngf=2), in_nc, out_nc)
    with torch.no_grad():
        y = net(torch.randn(1, in_nc, side, side) * 3)
    assert y.shape == (1, out_nc, side, side)
    assert y.abs().max() <= 1.0


def test_resnet_param_counts_match_authors() -> None:
    assert count(ResnetGenerator, 3, 3, ngf=64, n_blocks=9) == 11_378_179  # the paper's "about 11.4 M"
    assert count(ResnetGenerator, 3, 3, ngf=64, n_blocks=6) == 7_837_699


def test_unet_param_count_matches_authors() -> None:
    # pix2pix's default G: unet_256 with batch norm.
    assert count(UnetGenerator, 3, 3, num_downs=8, ngf=64, norm="batch") == 54_413_955


def test_state_dict_keys_match_authors() -> None:
    # Same Sequential layout as the authors' code, so their weight files map key for key.
    with torch.device("meta"):
        gen_keys = list(ResnetGenerator(3, 3).state_dict())
        disc_keys = list(NLayerDiscriminator(3).state_dict())
        unet_keys = list(UnetGenerator(3, 3, num_downs=7).state_dict())
    assert gen_keys[:2] == ["model.1.weight", "model.1.bias"]
    assert "model.10.conv_block.1.weight" in gen_keys
    assert gen_keys[-2:] == ["model.26.weight", "model.26.bias"]
    assert disc_keys[0] == "model.0.weight" and disc_keys[-1] == "model.11.bias"
    assert unet_keys[0] == "model.model.0.weight" and "model.model.1.model.1.weight" in unet_keys


@pytest.mark.parametrize("h, w", [(36, 52), (20, 8)])
def test_resnet_non_square(h: int, w: int) -> None:
    net = ResnetGenerator(3, 3, ngf=4, n_blocks=2)
    assert net(torch.randn(2, 3, h, w)).shape == (2, 3, h, w)


def test_unet_256_batch_norm_batch_two_and_instance_batch_one() -> None:
    # The innermost 1x1 map carries no norm, so both work at the intended size.
    for norm, batch in [("batch", 2), ("instance", 1)]:
        net = UnetGenerator(3, 3, num_downs=8, ngf=2, norm=norm)
        assert net(torch.randn(batch, 3, 256, 256)).shape == (batch, 3, 256, 256)


def test_unet_skip_carries_activated_input() -> None:
    # The authors' in-place LeakyReLU makes the skip LeakyReLU(x); we reproduce it.
    block = UnetSkipBlock(4, 4, innermost=True)
    x = torch.randn(1, 4, 8, 8)
    out = block(x)
    assert out.shape == (1, 8, 8, 8)
    torch.testing.assert_close(out[:, :4], F.leaky_relu(x, 0.2))


def test_unet_leaves_its_input_alone() -> None:
    net = UnetGenerator(3, 3, num_downs=7, ngf=2, norm="batch").eval()
    x = torch.randn(1, 3, 128, 128)
    x_copy = x.clone()
    net(x)
    assert torch.equal(x, x_copy)


def test_unet_backward_with_instance_norm() -> None:
    net = UnetGenerator(1, 1, num_downs=5, ngf=2)
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    net(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unet_rejects_too_few_levels() -> None:
    with pytest.raises(ValueError):
        UnetGenerator(3, 3, num_downs=4)


@pytest.mark.parametrize(
    "arch, expected", [("resnet_9blocks", 9), ("resnet_6blocks", 6), ("unet_128", 2), ("unet_256", 3)]
)
def test_dropout_flag_adds_dropout(arch: str, expected: int) -> None:
    with torch.device("meta"):
        on = build_generator(ModelConfig(generator=arch, ngf=2, dropout=True), 3, 3)
        off = build_generator(ModelConfig(generator=arch, ngf=2), 3, 3)
    assert count_modules(on, nn.Dropout) == expected
    assert count_modules(off, nn.Dropout) == 0


def test_size_multiple() -> None:
    assert size_multiple("resnet_9blocks") == size_multiple("resnet_6blocks") == 4
    assert size_multiple("unet_128") == 128
    assert size_multiple("unet_256") == 256


# ------------------------------------------------------------ discriminators


@pytest.mark.parametrize("side, out", [(256, 30), (128, 14), (64, 6)])
def test_patchgan_output_size(side: int, out: int) -> None:
    net = build_discriminator(ModelConfig(ndf=2), 3)
    assert net(torch.randn(1, 3, side, side)).shape == (1, 1, out, out)


def test_patchgan_param_count_matches_authors() -> None:
    assert count(NLayerDiscriminator, 3, ndf=64, n_layers=3) == 2_764_737


def test_patchgan_receptive_field_is_70() -> None:
    # Without norm (which mixes the whole image), the gradient of one output
    # pixel reaches exactly its receptive field.
    net = init_weights(NLayerDiscriminator(1, ndf=2, n_layers=3, norm="none"), "normal", 1.0)
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    net(x)[0, 0, 7, 7].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert receptive_field(3) == 70
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("n_layers, side, out", [(1, 32, 14), (2, 64, 14), (5, 256, 6)])
def test_n_layers_discriminator(n_layers: int, side: int, out: int) -> None:
    net = build_discriminator(ModelConfig(discriminator="n_layers", n_layers_d=n_layers, ndf=2), 1)
    assert net(torch.randn(1, 1, side, side)).shape == (1, 1, out, out)


def test_pixel_discriminator_shape() -> None:
    net = build_discriminator(ModelConfig(discriminator="pixel", ndf=4), 3)
    assert isinstance(net, PixelDiscriminator)
    assert net(torch.randn(2, 3, 9, 13)).shape == (2, 1, 9, 13)


# ------------------------------------------------------------ norms and init


@pytest.mark.parametrize(
    "norm, layer, bias",
    [("instance", nn.InstanceNorm2d, True), ("batch", nn.BatchNorm2d, False), ("none", nn.Identity, True)],
)
def test_each_norm_builds_and_runs(norm: str, layer: type[nn.Module], bias: bool) -> None:
    made = norm_layer(norm)(8)  # type: ignore[arg-type]
    assert type(made) is layer
    assert conv_bias(norm) is bias  # type: ignore[arg-type]
    if isinstance(made, (nn.InstanceNorm2d, nn.BatchNorm2d)):
        # Instance norm: no affine part, no running stats; batch norm: both.
        assert made.affine == made.track_running_stats == (norm == "batch")
    for disc in ("basic", "pixel"):
        cfg = ModelConfig(norm=norm, ngf=2, ndf=2, generator="resnet_6blocks", discriminator=disc)  # type: ignore[arg-type]
        gen, d = build_generator(cfg, 3, 3), build_discriminator(cfg, 3)
        y = gen(torch.randn(2, 3, 32, 32))
        assert d(y).shape[:2] == (2, 1)
        convs = [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert all((c.bias is not None) == bias for c in convs[:-1])
        assert convs[-1].bias is not None  # the output conv always has one


@pytest.mark.parametrize("kind", ["normal", "xavier", "kaiming", "orthogonal"])
def test_each_init_builds_and_runs(kind: str) -> None:
    cfg = ModelConfig(init_type=kind, ngf=2, ndf=2, generator="resnet_6blocks", norm="batch")  # type: ignore[arg-type]
    gen, disc = build_generator(cfg, 3, 3), build_discriminator(cfg, 3)
    assert torch.isfinite(disc(gen(torch.randn(2, 3, 32, 32)))).all()
    biases = [m.bias for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert biases and all(b.abs().max() == 0 for b in biases)


def test_normal_init_std() -> None:
    conv = init_weights(nn.Conv2d(256, 256, 3), "normal", 0.02)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert conv.weight.mean().abs().item() < 1e-3
    assert conv.bias.abs().max() == 0
    bn = init_weights(nn.BatchNorm2d(4096), "normal", 0.02)
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert bn.bias.abs().max() == 0


def test_kaiming_and_xavier_scales() -> None:
    fan_in, fan_out = 128 * 9, 256 * 9
    conv = init_weights(nn.Conv2d(128, 256, 3), "kaiming")
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.03)
    conv = init_weights(nn.Conv2d(128, 256, 3), "xavier", 1.0)
    assert conv.weight.std().item() == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.03)


# ------------------------------------------------------------ unknown names


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError, match="norm"):
        norm_layer("group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norm"):
        conv_bias("group")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generator"):
        build_generator(ModelConfig(generator="resnet_12blocks"), 3, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generator"):
        size_multiple("vit")
    with pytest.raises(ValueError, match="discriminator"):
        build_discriminator(ModelConfig(discriminator="global"), 3)  # type: ignore[arg-type]


def test_reflection_padding_keeps_bfloat16_under_autocast() -> None:
    # CPU autocast would pad in float32 and cast back for the next conv; the values are the same
    # either way, so the padding layer stays in its input's dtype.
    pad = ReflectionPad2d(2)
    x = torch.randn(1, 3, 5, 6).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pad(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y.float(), F.pad(x.float(), (2, 2, 2, 2), mode="reflect"))
    assert pad(x.float()).dtype == torch.float32
