import argparse
import dataclasses
import json

import pytest

from cyclegan.config import (
    SECTIONS,
    ConfigError,
    LossConfig,
    TrainConfig,
    add_config_arguments,
    config_diff,
    config_from_args,
)


def test_defaults_are_the_papers():
    cfg = TrainConfig()
    assert (cfg.loss.lambda_a, cfg.loss.lambda_b, cfg.loss.lambda_identity) == (10.0, 10.0, 0.5)
    assert cfg.loss.gan_mode == "lsgan" and cfg.optim.pool_size == 50
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.batch_size) == (2e-4, 0.5, 1)
    assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay, cfg.optim.lr_policy) == (100, 100, "linear")
    assert (cfg.model.init_type, cfg.model.init_gain) == ("normal", 0.02)
    assert (cfg.model.generator, cfg.model.discriminator, cfg.model.norm) == ("resnet_9blocks", "basic", "instance")
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == (286, 256, True)
    assert not cfg.model.dropout


def test_json_round_trip(tmp_path):
    cfg = TrainConfig()
    cfg = dataclasses.replace(cfg, loss=LossConfig(lambda_a=3.0, gan_mode="vanilla"))
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"model": {"ngf": "64"}}, "model.ngf"),
        ({"model": {"norm": "group"}}, "model.norm"),
        ({"optim": {"lr": True}}, "optim.lr"),
        ({"data": {"flip": 1}}, "data.flip"),
        ({"run": {"nmae": "x"}}, "run.nmae"),
        ({"model": 3}, "model"),
    ],
)
def test_bad_json_names_the_field(raw, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        TrainConfig.from_dict(raw)


def test_int_accepted_for_float_and_none_for_optional():
    cfg = TrainConfig.from_dict({"optim": {"lr": 1}, "run": {"max_steps": None}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"model": {"input_nc": 0}}, "model.input_nc"),  # any count >= 1 (N-channel TIFF); 2 was refused before
        ({"data": {"load_size": 100, "crop_size": 128}}, "data.load_size"),
        ({"optim": {"n_epochs": 0, "n_epochs_decay": 0}}, "optim.n_epochs"),
        ({"model": {"input_nc": 1}}, "loss.lambda_identity"),
        ({"loss": {"lambda_a": -1}}, "loss.lambda_a"),
    ],
)
def test_validate_ranges(raw, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        TrainConfig.from_dict(raw).validate()


def test_ablation_presets():
    assert LossConfig.for_ablation("cycle_only").gan_weight == 0
    assert LossConfig.for_ablation("gan_only").lambda_a == 0 == LossConfig.for_ablation("gan_only").lambda_b
    assert LossConfig.for_ablation("gan_forward").lambda_b == 0 < LossConfig.for_ablation("gan_forward").lambda_a
    assert LossConfig.for_ablation("gan_backward").lambda_a == 0 < LossConfig.for_ablation("gan_backward").lambda_b
    with pytest.raises(ValueError):
        LossConfig.for_ablation("nope")


def test_every_field_is_a_documented_option():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    help_text = parser.format_help()
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in help_text
            assert f.metadata["help"]


def test_options_overlay_only_what_was_given():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--crop-size", "128", "--no-flip", "--gan-mode", "vanilla", "--max-steps", "5"])
    cfg = config_from_args(args)
    assert cfg.data.crop_size == 128 and cfg.data.flip is False and cfg.loss.gan_mode == "vanilla"
    assert cfg.run.max_steps == 5 and cfg.data.load_size == 286
    diffs = {name for name, _, _ in config_diff(TrainConfig(), cfg)}
    assert diffs == {"data.crop_size", "data.flip", "loss.gan_mode", "run.max_steps"}
    json.dumps(cfg.to_dict())
