"""Files of the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix) read into ours.

Two things live here, both needed by `translate`, `import` and the golden comparison:

* generators saved as plain `state_dict`s (`latest_net_G.pth`, `{E}_net_G_A.pth`): the
  architecture is inferred from the keys and shapes (our networks use the authors'
  parameter names), loaded with `torch.load(weights_only=True)`;
* their options (`train_opt.txt`, or the `train.py` arguments of a trace) mapped onto
  our `TrainConfig`, every option either mapped or listed as ignored.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import ConfigError, DataConfig, LossConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from .nets import build_generator, build_discriminator
from .rundir import CheckpointError

_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


class AuthorsFormatError(CheckpointError):
    """A file in the authors' format cannot be read, or fits no architecture we know."""


# ---------------------------------------------------------------- state dicts


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state_dict saved by the authors' code; refuses anything but tensors (weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure: refuse the file in one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AuthorsFormatError(f"cannot read {path} as a PyTorch state_dict: {reason}") from None
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise AuthorsFormatError(f"{path} is not a plain state_dict of tensors (what the authors' code saves)")
    # Saved from a DataParallel wrapper by some forks: drop the prefix.
    return {k.removeprefix("module."): v for k, v in raw.items()}


@dataclass(frozen=True)
class GeneratorArch:
    """What a generator state_dict says about its network."""

    generator: str  # one of config.GeneratorArch
    ngf: int
    norm: str  # instance or batch
    input_nc: int
    output_nc: int
    dropout: bool | None  # ResNet: where the second conv of a block sits says it; U-Net: None (no trace)

    def model_config(self, base: ModelConfig | None = None) -> ModelConfig:
        base = base or ModelConfig()
        return dataclasses.replace(base, generator=self.generator, ngf=self.ngf, norm=self.norm,
                                   input_nc=self.input_nc, output_nc=self.output_nc,
                                   dropout=base.dropout if self.dropout is None else self.dropout)


def _weights(sd: dict[str, torch.Tensor], key: str) -> torch.Tensor | None:
    t = sd.get(key)
    return t if t is not None and t.dim() >= 1 else None


def infer_generator(sd: dict[str, torch.Tensor], source: str = "state_dict") -> GeneratorArch:
    """ResNet-6/9 or U-Net-128/256, ngf, channels and norm, from keys and shapes alone."""
    unknown = (f"{source} fits no generator we know (ResNet with 6 or 9 blocks, U-Net 128/256, "
               "instance or batch norm); pass a run directory of ours or a file of the authors' cycle_gan/pix2pix model")
    if "model.1.weight" in sd and sd["model.1.weight"].dim() == 4 and sd["model.1.weight"].shape[-1] == 7:
        first = sd["model.1.weight"]
        blocks = {int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        arch = {6: "resnet_6blocks", 9: "resnet_9blocks"}.get(len(blocks))
        convs = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"model\.(\d+)\.weight", k))]
        last = sd[f"model.{max(convs)}.weight"]
        if arch is None or last.dim() != 4 or last.shape[-1] != 7:
            raise AuthorsFormatError(unknown)
        # Batch norm is affine (a weight at model.2); instance norm has none, and then the conv keeps its bias.
        norm = "batch" if _weights(sd, "model.2.weight") is not None else "instance"
        if norm == "instance" and "model.1.bias" not in sd:
            raise AuthorsFormatError(f"{source}: convolutions without bias and no norm weights (the authors' "
                                     "--norm none) is not supported")
        # A block is pad, conv, norm, relu, [dropout,] pad, conv, norm: dropout moves the second conv from 5 to 6.
        dropout = any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", k) for k in sd) and not any(
            re.fullmatch(r"model\.\d+\.conv_block\.5\.weight", k) and sd[k].dim() == 4 for k in sd)
        return GeneratorArch(arch, first.shape[0], norm, first.shape[1], last.shape[0], dropout)
    if "model.model.0.weight" in sd:
        first = sd["model.model.0.weight"]
        depth = max(k.split(".").count("model") for k in sd) - 1
        arch = {7: "unet_128", 8: "unet_256"}.get(depth)
        up = sd.get("model.model.3.weight")
        if arch is None or up is None or up.dim() != 4:
            raise AuthorsFormatError(unknown)
        norm = "batch" if any(k.endswith(".running_mean") and k.replace("running_mean", "weight") in sd
                              for k in sd) else "instance"
        return GeneratorArch(arch, first.shape[0], norm, first.shape[1], up.shape[1], None)
    raise AuthorsFormatError(unknown)


def drop_instance_norm_stats(net: nn.Module, sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Without the running statistics that instance norm layers of old PyTorch versions saved.

    Our instance norm (like current PyTorch's default, and the authors' loader) keeps
    none, so those entries are unexpected; they were never used at test time either.
    Returns the cleaned dict and how many entries went.
    """
    expected = set(net.state_dict())
    dropped = [k for k in sd if k not in expected and k.rsplit(".", 1)[-1] in _NORM_STATS]
    return {k: v for k, v in sd.items() if k not in dropped}, len(dropped)


def load_into(net: nn.Module, sd: dict[str, torch.Tensor], source: str) -> int:
    """Load an authors' state_dict into our network (dtype of the network kept); returns entries dropped."""
    sd, dropped = drop_instance_norm_stats(net, sd)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        raise AuthorsFormatError(f"{source} does not fit the inferred network ({' '.join(lines[1:3]) or lines[0]})") from None
    return dropped


def load_generator(path: str | Path, base: ModelConfig | None = None) -> tuple[nn.Module, ModelConfig, list[str]]:
    """(network in eval mode, its ModelConfig, notes) for an authors' generator file.

    `base` supplies what the file cannot say (dropout); the architecture fields come from the file.
    """
    sd = load_state_dict(path)
    arch = infer_generator(sd, str(path))
    cfg = arch.model_config(base)
    net = build_generator(cfg, cfg.input_nc, cfg.output_nc)
    dropped = load_into(net, sd, str(path))
    notes = [f"{Path(path).name}: {arch.generator}, ngf {arch.ngf}, {arch.norm} norm, "
             f"{arch.input_nc} -> {arch.output_nc} channels"]
    if dropped:
        notes.append(f"{Path(path).name}: dropped {dropped} instance-norm running-statistics entries that older "
                     "PyTorch versions saved (unused at test time; the authors' loader drops them too)")
    return net.eval(), cfg, notes


def load_discriminator(path: str | Path, cfg: ModelConfig, in_channels: int) -> nn.Module:
    net = build_discriminator(cfg, in_channels)
    load_into(net, load_state_dict(path), str(path))
    return net


# ---------------------------------------------------------------- options

# Defaults of their base_options.py + train_options.py (what train_opt.txt holds when unset).
AUTHORS_DEFAULTS: dict[str, str] = {
    "dataroot": "None", "name": "experiment_name", "gpu_ids": "0", "checkpoints_dir": "./checkpoints",
    "model": "cycle_gan", "input_nc": "3", "output_nc": "3", "ngf": "64", "ndf": "64", "netD": "basic",
    "netG": "resnet_9blocks", "n_layers_D": "3", "norm": "instance", "init_type": "normal", "init_gain": "0.02",
    "no_dropout": "False", "dataset_mode": "unaligned", "direction": "AtoB", "serial_batches": "False",
    "num_threads": "4", "batch_size": "1", "load_size": "286", "crop_size": "256", "max_dataset_size": "inf",
    "preprocess": "resize_and_crop", "no_flip": "False", "display_winsize": "256", "epoch": "latest",
    "load_iter": "0", "verbose": "False", "suffix": "", "use_wandb": "False",
    "wandb_project_name": "CycleGAN-and-pix2pix", "display_freq": "400", "display_ncols": "4", "display_id": "1",
    "display_server": "http://localhost", "display_env": "main", "display_port": "8097", "update_html_freq": "1000",
    "print_freq": "100", "no_html": "False", "save_latest_freq": "5000", "save_epoch_freq": "5",
    "save_by_iter": "False", "continue_train": "False", "epoch_count": "1", "phase": "train", "n_epochs": "100",
    "n_epochs_decay": "100", "beta1": "0.5", "lr": "0.0002", "gan_mode": "lsgan", "pool_size": "50",
    "lr_policy": "linear", "lr_decay_iters": "50", "lambda_A": "10.0", "lambda_B": "10.0",
    "lambda_identity": "0.5", "isTrain": "True",
}
MODEL_DEFAULTS: dict[str, dict[str, str]] = {
    "cycle_gan": {"no_dropout": "True"},
    "pix2pix": {"norm": "batch", "netG": "unet_256", "dataset_mode": "aligned", "pool_size": "0",
                "gan_mode": "vanilla", "lambda_L1": "100.0"},
}
_FLAGS = {"no_dropout", "serial_batches", "no_flip", "verbose", "use_wandb", "no_html", "save_by_iter",
          "continue_train", "eval"}

# Options with no effect on what is computed, or handled elsewhere: listed, not mapped.
IGNORED: dict[str, str] = {
    "gpu_ids": "the device is chosen by --device (auto: the GPU when there is one)",
    "display_winsize": "no visdom display", "display_ncols": "no visdom display", "display_id": "no visdom display",
    "display_server": "no visdom display", "display_env": "no visdom display", "display_port": "no visdom display",
    "update_html_freq": "RUN_DIR/report.html is refreshed every --report-freq steps", "no_html": "see update_html_freq",
    "use_wandb": "--tensorboard instead", "wandb_project_name": "--tensorboard instead",
    "verbose": "not needed", "suffix": "the run is named by --name",
    "save_by_iter": "our checkpoints are always named by step",
    "continue_train": "the imported run is continued by `cyclegan train --resume`",
    "epoch": "the epoch comes from the file names", "load_iter": "the epoch comes from the file names",
    "epoch_count": "the epoch comes from the file names", "isTrain": "always training",
    "name": "--name of `cyclegan import`", "checkpoints_dir": "--checkpoints-dir of `cyclegan import`",
}


def parse_opt_file(path: str | Path) -> dict[str, str]:
    """`name: value   [default: x]` lines of the authors' train_opt.txt, as strings."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    opts = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*):\s?(.*?)\s*(\[default: .*\])?\s*$", line)
        if m:
            opts[m.group(1)] = m.group(2).strip()
    if "model" not in opts:
        raise CheckpointError(f"{path} is not an options file of the authors' code (no 'model:' line)")
    return opts


def parse_argv(argv: list[str]) -> dict[str, str]:
    """The authors' `train.py` arguments (a trace's losses.json 'options') over their defaults."""
    opts = dict(AUTHORS_DEFAULTS)
    model = argv[argv.index("--model") + 1] if "--model" in argv[:-1] else opts["model"]
    # Their models' modify_commandline_options change some defaults before parsing.
    opts.update(MODEL_DEFAULTS.get(model, {}))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r} in the authors' options")
        key = arg[2:]
        if key in _FLAGS:
            opts[key] = "True"
            i += 1
        else:
            if i + 1 >= len(argv):
                raise ConfigError(f"option {arg} of the authors' options has no value")
            opts[key] = argv[i + 1]
            i += 2
    return opts


def _bool(value: str) -> bool:
    return value.strip() == "True"


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise ConfigError(f"the authors' --{option} {value} has no counterpart here (we offer {', '.join(allowed)})")
    return value


def config_from_authors(opts: dict[str, str]) -> tuple[TrainConfig, dict[str, str], dict[str, str]]:
    """(TrainConfig, {their option: our field}, {their option: why ignored}) for their options.

    Every option is either mapped or ignored; an option we do not know raises, so nothing is
    silently dropped. Values we cannot reproduce (wgangp, plateau, a model other than
    cycle_gan/pix2pix) raise ConfigError with the option's name.
    """
    given = set(opts)  # what the file or the arguments hold; the rest are their defaults
    opts = {**AUTHORS_DEFAULTS, **opts}
    mapped: dict[str, str] = {}
    ignored: dict[str, str] = {}
    g = opts.get

    def take(option: str, field: str):
        mapped[option] = field
        return opts[option]

    model_name = _choice(take("model", "model.method"), ("cycle_gan", "pix2pix"), "model")
    model = ModelConfig(
        method="cyclegan" if model_name == "cycle_gan" else "pix2pix",
        input_nc=int(take("input_nc", "model.input_nc")), output_nc=int(take("output_nc", "model.output_nc")),
        ngf=int(take("ngf", "model.ngf")), ndf=int(take("ndf", "model.ndf")),
        generator=_choice(take("netG", "model.generator"), ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"), "netG"),
        discriminator=_choice(take("netD", "model.discriminator"), ("basic", "n_layers", "pixel"), "netD"),
        n_layers_d=int(take("n_layers_D", "model.n_layers_d")),
        norm=_choice(take("norm", "model.norm"), ("instance", "batch", "none"), "norm"),
        init_type=_choice(take("init_type", "model.init_type"), ("normal", "xavier", "kaiming", "orthogonal"), "init_type"),
        init_gain=float(take("init_gain", "model.init_gain")),
        dropout=not _bool(take("no_dropout", "model.dropout (negated)")),
    )
    dataroot = take("dataroot", "data.dataroot")
    mode = _choice(take("dataset_mode", "data.dataset_mode"), ("unaligned", "aligned"), "dataset_mode")
    max_size = take("max_dataset_size", "data.max_dataset_size")
    data = DataConfig(
        dataroot=None if dataroot in ("None", "") else dataroot,
        dataset_mode=mode, paired=mode == "aligned" and model.method == "pix2pix",
        direction=_choice(take("direction", "data.direction"), ("AtoB", "BtoA"), "direction"),
        phase=take("phase", "data.phase"),
        load_size=int(take("load_size", "data.load_size")), crop_size=int(take("crop_size", "data.crop_size")),
        preprocess=_choice(take("preprocess", "data.preprocess"),
                           ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"), "preprocess"),
        flip=not _bool(take("no_flip", "data.flip (negated)")),
        max_dataset_size=None if max_size == "inf" or float(max_size) == math.inf else int(max_size),
        num_workers=int(take("num_threads", "data.num_workers")),
        serial_batches=_bool(take("serial_batches", "data.serial_batches")),
    )
    identity = float(take("lambda_identity", "loss.lambda_identity")) if model.method == "cyclegan" else 0.0
    loss = LossConfig(
        gan_mode=_choice(take("gan_mode", "loss.gan_mode"), ("lsgan", "vanilla"), "gan_mode"),
        lambda_a=float(take("lambda_A", "loss.lambda_a")), lambda_b=float(take("lambda_B", "loss.lambda_b")),
        lambda_identity=identity,
        lambda_l1=float(g("lambda_L1", "100.0")),
    )
    if "lambda_L1" in opts:
        mapped["lambda_L1"] = "loss.lambda_l1"
    optim = OptimConfig(
        lr=float(take("lr", "optim.lr")), beta1=float(take("beta1", "optim.beta1")),
        batch_size=int(take("batch_size", "optim.batch_size")),
        n_epochs=int(take("n_epochs", "optim.n_epochs")), n_epochs_decay=int(take("n_epochs_decay", "optim.n_epochs_decay")),
        lr_policy=_choice(take("lr_policy", "optim.lr_policy"), ("linear", "step", "cosine"), "lr_policy"),
        lr_decay_iters=int(take("lr_decay_iters", "optim.lr_decay_iters")),
        pool_size=int(take("pool_size", "optim.pool_size")) if model.method == "cyclegan" else 0,
    )
    run = RunConfig(
        print_freq=int(take("print_freq", "run.print_freq")), sample_freq=int(take("display_freq", "run.sample_freq")),
        save_latest_freq=int(take("save_latest_freq", "run.save_latest_freq")),
        save_epoch_freq=int(take("save_epoch_freq", "run.save_epoch_freq")),
    )
    for option in opts:
        if option in mapped:
            continue
        if option in IGNORED:
            ignored[option] = IGNORED[option]
        elif option in ("results_dir", "aspect_ratio", "num_test", "model_suffix", "eval"):
            ignored[option] = "a test.py option"
        else:
            raise ConfigError(f"the authors' option {option} is not known here; it cannot be mapped or ignored safely")
    mapped = {k: v for k, v in mapped.items() if k in given}
    ignored = {k: v for k, v in ignored.items() if k in given}
    return TrainConfig(model=model, data=data, loss=loss, optim=optim, run=run), mapped, ignored


def authors_loss_names(cfg: LossConfig) -> dict[str, tuple[str, float]]:
    """Their reported loss name -> (our loss term, the factor theirs carries).

    Their cycle and identity losses are reported weighted, ours unweighted; their
    idt_A is G_A(b) against b, which is our idt_b (and idt_B our idt_a).
    """
    return {
        "G_A": ("gan_ab", 1.0), "G_B": ("gan_ba", 1.0),
        "cycle_A": ("cycle_a", cfg.lambda_a), "cycle_B": ("cycle_b", cfg.lambda_b),
        "idt_A": ("idt_b", cfg.lambda_b * cfg.lambda_identity), "idt_B": ("idt_a", cfg.lambda_a * cfg.lambda_identity),
        "D_A": ("disc_b", 1.0), "D_B": ("disc_a", 1.0),
    }


# Their network names -> ours. Their D_A judges domain B (it sees G_A's output).
NET_MAP = {"G_A": "gen_ab", "G_B": "gen_ba", "D_A": "disc_b", "D_B": "disc_a"}
