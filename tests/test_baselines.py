"""The paper's baselines (pix2pix, SimGAN, BiGAN/ALI, CoGAN) as methods of the package."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from cyclegan import ConfigError, Translator, train
from cyclegan.cli import main
from cyclegan.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from cyclegan.models import CycleGANNets
from cyclegan.nets.coupled import CoupledGenerators, LatentInversion
from cyclegan.report import read_loss_log, write_report
from cyclegan.methods import METHODS, check_config, with_method_defaults
from cyclegan.methods import Optimizers, Pools
from cyclegan.training.state import TrainingState

BASELINES = ("pix2pix", "simgan", "bigan", "cogan")


def aligned_root(tmp_path: Path, count: int = 6, side: int = 20) -> Path:
    """Paired A|B images where B is A with its colours inverted: a mapping pix2pix can learn."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "aligned"
    for phase, n in (("train", count), ("test", 2)):
        (folder / phase).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(folder / phase / f"{i}.png")
    return folder


def baseline_config(method: str, tmp_path: Path, unaligned: Path, **run) -> TrainConfig:
    base = with_method_defaults(tiny_config(unaligned, tmp_path / "runs", name=method, **run), method)
    model = dataclasses.replace(base.model, generator="resnet_6blocks")  # pix2pix's U-Net-256 needs 256 px
    data = base.data
    if method == "pix2pix":
        data = dataclasses.replace(data, dataroot=str(aligned_root(tmp_path)))
    optim = dataclasses.replace(base.optim, batch_size=2 if method == "cogan" else 1)
    return dataclasses.replace(base, model=model, data=data, optim=optim)


def _nets_and_optimizers(cfg: TrainConfig) -> tuple[CycleGANNets, Optimizers, Pools]:
    state = TrainingState.build(cfg)
    return state.nets, state.optimizers, state.pools


@pytest.mark.parametrize("method", BASELINES)
def test_step_updates_every_network_and_logs_its_terms(method, tmp_path, unaligned_root):
    cfg = baseline_config(method, tmp_path, unaligned_root)
    nets, opts, pools = _nets_and_optimizers(cfg)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.by_name().items()}
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = METHODS[method].step(nets, opts, pools, a, b, cfg.loss)
    assert set(losses) == set(METHODS[method].loss_names)
    assert all(torch.isfinite(v) and v.dim() == 0 and not v.requires_grad for v in losses.values())
    for name, net in nets.by_name().items():
        moved = any(not torch.equal(p, q) for p, q in zip(before[name], net.parameters()))
        assert moved, f"{method}: {name} was not updated"


def test_methods_build_the_networks_they_need():
    model = ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4)
    pix = CycleGANNets.build(dataclasses.replace(model, method="pix2pix"))
    assert pix.disc_b.model[0].in_channels == 6 and pix.disc_a.model[0].in_channels == 6  # conditional
    bigan = CycleGANNets.build(dataclasses.replace(model, method="bigan"))
    assert bigan.disc_a is None and set(bigan.by_name()) == {"gen_ab", "gen_ba", "disc_b"}
    assert bigan.disc_b.model[0].in_channels == 6  # (a, b) pairs
    cogan = CycleGANNets.build(dataclasses.replace(model, method="cogan", norm="batch"), image_size=32)
    assert cogan.gen_ab.coupled is cogan.gen_ba.coupled and cogan.disc_a.coupled is cogan.disc_b.coupled
    unique = list(cogan.generator_parameters())
    assert len(unique) == len({id(p) for p in unique}) == len(list(cogan.gen_ab.coupled.parameters()))
    shared = cogan.gen_ab.coupled
    assert sum(p.numel() for p in shared.shared.parameters()) > 10 * sum(p.numel() for p in shared.head_a.parameters())


def test_method_defaults_follow_each_baseline():
    pix = with_method_defaults(TrainConfig(), "pix2pix")
    assert (pix.model.generator, pix.model.dropout, pix.loss.gan_mode, pix.loss.lambda_l1, pix.optim.pool_size) == (
        "unet_256", True, "vanilla", 100.0, 0)
    assert (pix.data.dataset_mode, pix.data.paired, pix.loss.lambda_identity) == ("aligned", True, 0.0)
    sim = with_method_defaults(TrainConfig(), "simgan")
    assert (sim.loss.lambda_l1, sim.optim.pool_size, sim.loss.gan_mode) == (10.0, 50, "lsgan")
    assert with_method_defaults(TrainConfig(), "bigan").optim.pool_size == 0
    co = with_method_defaults(TrainConfig(), "cogan")
    assert (co.model.norm, co.optim.batch_size) == ("batch", 8)
    assert with_method_defaults(TrainConfig(), "cyclegan") == TrainConfig()


@pytest.mark.parametrize("change, message", [
    (dict(model=ModelConfig(method="pix2pix"), loss=LossConfig(lambda_identity=0)), "--dataset-mode aligned --paired"),
    (dict(model=ModelConfig(method="simgan")), "only cyclegan has an identity loss"),
    (dict(model=ModelConfig(method="simgan", output_nc=1), loss=LossConfig(lambda_identity=0)), "--input-nc/--output-nc"),
    (dict(model=ModelConfig(method="bigan"), loss=LossConfig(lambda_identity=0)), "must be 0 for bigan"),
    (dict(model=ModelConfig(method="cogan"), loss=LossConfig(lambda_identity=0),
          data=DataConfig(crop_size=96, load_size=100)), "power of two"),
])
def test_invalid_method_settings_are_refused(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(dataclasses.replace(TrainConfig(), **change))


@pytest.mark.slow
@pytest.mark.parametrize("method", BASELINES)
def test_train_resume_and_translate(method, tmp_path, unaligned_root):
    cfg = baseline_config(method, tmp_path, unaligned_root, max_steps=3)
    run_dir = train(cfg)
    log = read_loss_log(run_dir / "loss_log.csv")
    assert [k for k in log if k not in ("step", "epoch", "lr", "sec_per_step")] == list(METHODS[method].loss_names)
    train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_steps=5)), resume=True)
    assert read_loss_log(run_dir / "loss_log.csv")["step"][-1] == 5
    assert 'alt="loss curves"' in write_report(run_dir).read_text()
    translator = Translator.from_run(run_dir, "AtoB", device="cpu", with_inverse=True)
    x = torch.rand(1, 3, 24, 40) * 2 - 1
    fake, rec = translator.cycle(x)
    assert fake.shape == rec.shape == x.shape and fake.abs().max() <= 1


class _Recorder(torch.nn.Module):
    """Wraps a discriminator and keeps every input it is shown."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.net(x)


def test_pix2pix_judges_input_output_pairs(tmp_path, unaligned_root):
    cfg = baseline_config("pix2pix", tmp_path, unaligned_root)
    nets, opts, pools = _nets_and_optimizers(cfg)
    nets.disc_b = _Recorder(nets.disc_b)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    METHODS["pix2pix"].step(nets, opts, pools, a, b, cfg.loss)
    generator_view, real_pair, fake_pair = nets.disc_b.seen
    assert torch.equal(real_pair, torch.cat([a, b], 1))  # the real pair, as paired in the data
    for pair in (generator_view, fake_pair):  # the input beside its translation
        assert torch.equal(pair[:, :3], a) and not torch.equal(pair[:, 3:], b)


def test_paired_loader_keeps_pix2pix_pairs_together(tmp_path, unaligned_root):
    from cyclegan.data import build_train_dataset

    cfg = baseline_config("pix2pix", tmp_path, unaligned_root)
    dataset = build_train_dataset(cfg.data, Path(cfg.data.dataroot), 3, 3)
    for i in range(3):
        item = dataset[(i, i, i)]
        assert torch.allclose(item["b"], -item["a"], atol=2 / 255 + 1e-6)  # B is A inverted in aligned_root


def test_cogan_inversion_finds_a_code_without_touching_weights():
    torch.manual_seed(0)
    gens = CoupledGenerators(latent_dim=8, channels_a=3, channels_b=1, size=16, ngf=8, norm="none").eval()
    target = gens.draw(torch.randn(2, 8, 1, 1), "a").detach()
    before = [p.detach().clone() for p in gens.parameters()]
    start_error = (gens.draw(torch.zeros(2, 8, 1, 1), "a") - target).abs().mean()
    with torch.no_grad():  # as the Translator calls it
        inverter = LatentInversion(gens, "a", steps=150)
        found = gens.draw(inverter.invert(target), "a")
        out = inverter(torch.nn.functional.interpolate(target, size=(24, 20)))
    assert (found - target).abs().mean() < 0.5 * start_error
    assert out.shape == (2, 1, 24, 20)
    assert all(torch.equal(p, q) and p.grad is None for p, q in zip(gens.parameters(), before))


def test_cli_method_option_applies_the_baseline_defaults(tmp_path, unaligned_root):
    root = aligned_root(tmp_path)
    code = main(["train", str(root), "--method", "pix2pix", "--generator", "resnet_6blocks", "--ngf", "4",
                 "--ndf", "4", "--load-size", "36", "--crop-size", "32", "--num-workers", "0", "--max-steps", "2",
                 "--checkpoints-dir", str(tmp_path / "runs"), "--name", "p2p", "--no-progress"])
    assert code == 0
    saved = json.loads((tmp_path / "runs" / "p2p" / "config.json").read_text())
    assert saved["model"]["method"] == "pix2pix" and saved["model"]["generator"] == "resnet_6blocks"
    assert saved["data"]["paired"] is True and saved["loss"]["lambda_l1"] == 100.0 and saved["optim"]["pool_size"] == 0


@pytest.mark.slow
def test_cogan_cannot_be_exported(tmp_path, unaligned_root):
    pytest.importorskip("onnx")
    from cyclegan.export import ExportError, export_generator

    run_dir = train(baseline_config("cogan", tmp_path, unaligned_root, max_steps=1))
    with pytest.raises(ExportError, match="CoGAN"):
        export_generator(run_dir, "AtoB", "onnx", tmp_path / "g.onnx")
