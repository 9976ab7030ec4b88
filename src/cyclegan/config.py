"""Typed configuration for a CycleGAN run.

Each part of the program receives only the section it needs (`ModelConfig` for
the networks, `DataConfig` for loading, ...). The command line options are
generated from these dataclasses, so a field, its default and its help text are
written once, here. Defaults reproduce the paper and the authors' code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .atomic import write_text_atomic

GeneratorArch = Literal["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"]
DiscriminatorArch = Literal["basic", "n_layers", "pixel"]
NormKind = Literal["instance", "batch", "none"]
InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]
GanMode = Literal["lsgan", "vanilla"]
LrPolicy = Literal["linear", "step", "cosine"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
DatasetMode = Literal["unaligned", "aligned"]
Direction = Literal["AtoB", "BtoA"]  # the one direction type: AtoB applies gen_ab (G), BtoA gen_ba (F)
DIRECTIONS: tuple[Direction, ...] = typing.get_args(Direction)
Method = Literal["cyclegan", "pix2pix", "simgan", "bigan", "cogan"]
# Upper bounds that only catch a damaged or crafted config.json (the paper uses 64 filters, 256 px).
MAX_FILTERS = 4096
MAX_SIDE = 65536
OnBadImage = Literal["error", "skip"]
CacheMode = Literal["auto", "on", "off"]
Intensity = Literal["dtype", "range", "percentile"]


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ModelConfig:
    """Networks. G maps A -> B, F maps B -> A; D_A judges domain A, D_B domain B."""

    method: Method = _opt(
        "cyclegan",
        "what to train: cyclegan, or a baseline of the paper (section 5.1): pix2pix (paired), simgan, "
        "bigan (BiGAN/ALI for image -> image), cogan; a baseline also changes the defaults it needs",
    )
    input_nc: int = _opt(3, "channels of domain A images (1 = grayscale, 3 = RGB; 16-bit, float and N-channel "
                            "TIFF data set it from the files)")
    output_nc: int = _opt(3, "channels of domain B images (1 = grayscale, 3 = RGB; 16-bit, float and N-channel "
                             "TIFF data set it from the files)")
    ngf: int = _opt(64, "filters in the generators' first conv layer")
    ndf: int = _opt(64, "filters in the discriminators' first conv layer")
    generator: GeneratorArch = _opt("resnet_9blocks", "generator architecture")
    discriminator: DiscriminatorArch = _opt(
        "basic", "discriminator: basic = 70x70 PatchGAN, n_layers = PatchGAN with --n-layers-d, pixel = 1x1"
    )
    n_layers_d: int = _opt(3, "strided conv layers of the PatchGAN when --discriminator n_layers")
    norm: NormKind = _opt("instance", "normalisation layers")
    init_type: InitKind = _opt("normal", "weight initialisation")
    init_gain: float = _opt(0.02, "scale (std for normal) of the initialisation")
    dropout: bool = _opt(False, "dropout 0.5 in the generators (off for CycleGAN, as in the authors' code)")
    latent_dim: int = _opt(100, "cogan: size of the latent code both generators start from")
    inversion_steps: int = _opt(
        200, "cogan: Adam steps that search the latent code of an input image when translating it"
    )


@dataclass(frozen=True)
class DataConfig:
    """Where images come from and how each is turned into a training tensor."""

    dataroot: str | None = _opt(None, "dataset folder; empty = the built-in demo set")
    dataset_mode: DatasetMode = _opt(
        "unaligned", "unaligned: ROOT/trainA + ROOT/trainB; aligned: ROOT/train/*.jpg with A|B side by side"
    )
    paired: bool = _opt(False, "aligned layout only: keep A and B of an image together (default: shuffle halves)")
    direction: Direction = _opt("AtoB", "BtoA swaps the roles of the two domains")
    phase: str = _opt("train", "sub-folder prefix to train on (trainA/trainB or train/)")
    load_size: int = _opt(286, "scale images to this size before cropping")
    crop_size: int = _opt(256, "then crop to this size")
    preprocess: Preprocess = _opt("resize_and_crop", "resize/crop mode at load time")
    flip: bool = _opt(True, "random horizontal flip for augmentation")
    max_dataset_size: int | None = _opt(None, "use at most this many images per domain")
    num_workers: int = _opt(2, "data loading worker processes (0 = load in the main process)")
    serial_batches: bool = _opt(False, "take images in order instead of randomly")
    on_bad_image: OnBadImage = _opt("error", "an unreadable image: stop with an error, or skip it with a warning")
    cache_images: CacheMode = _opt(
        "auto", "decode and resize every training image once and keep it in memory (same results, less CPU "
        "per step); auto: when it takes at most a quarter of the free memory"
    )
    intensity_a: Intensity = _opt(
        "dtype", "how domain A's raw pixel values map to the networks' [-1, 1]: dtype = the pixel type's range "
        "(0..255, 0..65535, floats 0..1), range = --intensity-range-a, percentile = --intensity-percentiles of "
        "the training images, computed once and stored here"
    )
    intensity_b: Intensity = _opt("dtype", "the same for domain B")
    intensity_range_a: tuple[float, float] | None = _opt(
        None, "MIN MAX of domain A mapped to -1 and 1 (implies --intensity-a range; filled in by percentile)"
    )
    intensity_range_b: tuple[float, float] | None = _opt(None, "the same for domain B")
    intensity_percentiles: tuple[float, float] = _opt((0.5, 99.5), "LOW HIGH percentiles for --intensity-a/-b percentile")
    dtype_a: str | None = _opt(
        None, "pixel type of domain A's files (uint8, uint16, int16, float32, ...): detected at training start; "
        "translate writes domain A outputs in it"
    )
    dtype_b: str | None = _opt(None, "the same for domain B")


@dataclass(frozen=True)
class LossConfig:
    """Objective. Setting a weight to 0 removes that term (the paper's ablations)."""

    gan_mode: GanMode = _opt("lsgan", "adversarial loss: least squares (paper) or log-likelihood")
    gan_weight: float = _opt(1.0, "weight of the adversarial terms (0 = cycle alone)")
    lambda_a: float = _opt(10.0, "weight of the forward cycle A -> B -> A (0 disables it)")
    lambda_b: float = _opt(10.0, "weight of the backward cycle B -> A -> B (0 disables it)")
    lambda_identity: float = _opt(
        0.5, "identity loss weight as a fraction of lambda: G(b) ~ b and F(a) ~ a (0 disables it)"
    )
    lambda_l1: float = _opt(
        100.0, "pix2pix: weight of |G(a) - b| against the paired target; simgan: of |G(a) - a| against the input"
    )

    @staticmethod
    def for_ablation(name: str) -> "LossConfig":
        """The objectives of the paper's Tables 4-5 (without identity loss, as in the paper)."""
        presets = {
            "full": LossConfig(lambda_identity=0.0),
            "cycle_only": LossConfig(gan_weight=0.0, lambda_identity=0.0),
            "gan_only": LossConfig(lambda_a=0.0, lambda_b=0.0, lambda_identity=0.0),
            "gan_forward": LossConfig(lambda_b=0.0, lambda_identity=0.0),
            "gan_backward": LossConfig(lambda_a=0.0, lambda_identity=0.0),
        }
        if name not in presets:
            raise ValueError(f"unknown ablation {name!r}; choose one of {', '.join(presets)}")
        return presets[name]


@dataclass(frozen=True)
class OptimConfig:
    """Optimisers, learning-rate schedule and the history pool."""

    lr: float = _opt(2e-4, "Adam learning rate")
    beta1: float = _opt(0.5, "Adam beta1")
    beta2: float = _opt(0.999, "Adam beta2")
    batch_size: int = _opt(1, "images per domain per step")
    n_epochs: int = _opt(100, "epochs at the initial learning rate")
    n_epochs_decay: int = _opt(100, "epochs of decay after those")
    lr_policy: LrPolicy = _opt("linear", "linear decay to zero, step (x0.1 every --lr-decay-iters epochs) or cosine")
    lr_decay_iters: int = _opt(50, "step policy: epochs between two x0.1 decays")
    pool_size: int = _opt(50, "history of generated images shown to each discriminator (0 disables)")


@dataclass(frozen=True)
class RunConfig:
    """Bookkeeping of one run: where it lives, how long it runs, what it writes."""

    name: str = _opt("experiment", "run name: the run directory is CHECKPOINTS_DIR/NAME")
    checkpoints_dir: str = _opt("./checkpoints", "folder holding run directories")
    seed: int = _opt(0, "random seed; the same seed and data give the same run on CPU")
    max_steps: int | None = _opt(None, "stop after this many optimisation steps (smoke runs)")
    device: str = _opt("auto", "auto, cpu, cuda, cuda:1, mps")
    print_freq: int = _opt(100, "steps between two rows of the loss log")
    sample_freq: int = _opt(400, "steps between two sample grids")
    save_latest_freq: int = _opt(5000, "steps between two checkpoints (one is also written at each epoch end)")
    save_epoch_freq: int = _opt(5, "keep the checkpoint of every N-th epoch (others are replaced by newer ones)")
    progress: bool = _opt(True, "show a progress bar")
    report_freq: int = _opt(1000, "steps between refreshes of RUN_DIR/report.html, in the background (0: only at the end)")
    tensorboard: bool = _opt(False, "also log losses and sample grids to RUN_DIR/tensorboard (pip install tensorboard)")
    amp: bool = _opt(False, "bfloat16 autocast on CUDA or on a CPU with native bfloat16 "
                          "(AVX512-BF16/AMX); loss terms stay float32")
    compile: bool = _opt(False, "torch.compile the networks (the first steps are slow while it compiles)")
    threads: int = _opt(0, "CPU threads for torch (0: torch's default, at most the CPUs this process may use, "
                           "one fewer for each CPU other processes keep busy; OMP_NUM_THREADS if set)")
    eval_freq: int = _opt(0, "steps between two evaluations during training (KID/FID per direction, cycle error, "
                             "failure checks; RUN_DIR/eval_log.csv, checkpoints/best); 0: off. Recommended: 5000 (its cost: "
                             "docs/commands/train.md)")
    eval_size: int = _opt(50, "images per direction translated at each evaluation (a fixed, evenly spaced subset)")
    eval_dir: str | None = _opt(None, "folder whose testA/ and testB/ hold the evaluation images (default: DATAROOT)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on, in five sections; saved as RUN_DIR/config.json.

    Build one in Python with the sections you change, e.g.
    `TrainConfig(data=DataConfig(dataroot="datasets/horse2zebra", crop_size=128))`;
    `dataclasses.replace` derives variants. `validate()` checks ranges.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def total_epochs(self) -> int:
        return self.optim.n_epochs + self.optim.n_epochs_decay

    def run_dir(self) -> Path:
        return Path(self.run.checkpoints_dir) / self.run.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, raw, "")

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from None
        try:
            return cls.from_dict(raw).validate()
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    def validate(self) -> "TrainConfig":
        """Range checks that types alone cannot express; returns self."""
        checks = [
            (self.model.input_nc >= 1, "model.input_nc", "must be at least 1"),
            (self.model.output_nc >= 1, "model.output_nc", "must be at least 1"),
            *_intensity_checks(self.data),
            (0 < self.model.ngf <= MAX_FILTERS, "model.ngf", f"must be between 1 and {MAX_FILTERS}"),
            (0 < self.model.ndf <= MAX_FILTERS, "model.ndf", f"must be between 1 and {MAX_FILTERS}"),
            (self.model.n_layers_d >= 1, "model.n_layers_d", "must be at least 1"),
            (self.model.init_gain >= 0, "model.init_gain", "must be >= 0"),
            (4 <= self.data.crop_size <= MAX_SIDE, "data.crop_size", f"must be between 4 and {MAX_SIDE}"),
            (1 <= self.data.load_size <= MAX_SIDE, "data.load_size", f"must be between 1 and {MAX_SIDE}"),
            (
                self.data.preprocess not in ("resize_and_crop", "scale_width_and_crop")
                or self.data.load_size >= self.data.crop_size,
                "data.load_size",
                f"must be >= crop size {self.data.crop_size} for preprocess {self.data.preprocess}",
            ),
            (self.data.num_workers >= 0, "data.num_workers", "must be >= 0"),
            (self.data.max_dataset_size is None or self.data.max_dataset_size > 0, "data.max_dataset_size",
             "must be positive"),
            (self.loss.gan_weight >= 0, "loss.gan_weight", "must be >= 0"),
            (self.loss.lambda_a >= 0, "loss.lambda_a", "must be >= 0"),
            (self.loss.lambda_b >= 0, "loss.lambda_b", "must be >= 0"),
            (self.loss.lambda_identity >= 0, "loss.lambda_identity", "must be >= 0"),
            (
                self.loss.lambda_identity == 0 or self.model.input_nc == self.model.output_nc,
                "loss.lambda_identity",
                "must be 0 when the two domains have different channel counts",
            ),
            (self.optim.lr > 0, "optim.lr", "must be positive"),
            (0 <= self.optim.beta1 < 1, "optim.beta1", "must be in [0, 1)"),
            (0 <= self.optim.beta2 < 1, "optim.beta2", "must be in [0, 1)"),
            (self.optim.batch_size >= 1, "optim.batch_size", "must be at least 1"),
            (self.optim.n_epochs >= 0, "optim.n_epochs", "must be >= 0"),
            (self.optim.n_epochs_decay >= 0, "optim.n_epochs_decay", "must be >= 0"),
            (self.total_epochs >= 1, "optim.n_epochs", "n_epochs + n_epochs_decay must be at least 1"),
            (self.optim.lr_decay_iters >= 1, "optim.lr_decay_iters", "must be at least 1"),
            (self.optim.pool_size >= 0, "optim.pool_size", "must be >= 0"),
            (self.run.max_steps is None or self.run.max_steps >= 1, "run.max_steps", "must be at least 1"),
            (self.run.print_freq >= 1, "run.print_freq", "must be at least 1"),
            (self.run.sample_freq >= 1, "run.sample_freq", "must be at least 1"),
            (self.run.save_latest_freq >= 1, "run.save_latest_freq", "must be at least 1"),
            (self.run.save_epoch_freq >= 1, "run.save_epoch_freq", "must be at least 1"),
            (self.run.report_freq >= 0, "run.report_freq", "must be >= 0"),
            (self.run.eval_freq >= 0, "run.eval_freq", "must be >= 0 (0: no evaluations)"),
            (self.run.eval_size >= 2, "run.eval_size", "must be at least 2 (KID and FID need two images)"),
            (_plain_name(self.run.name), "run.name",
             f"must be a plain folder name (no '/', not '.' or '..'), got {self.run.name!r}"),
            (self.loss.lambda_l1 >= 0, "loss.lambda_l1", "must be >= 0"),
            (self.model.latent_dim >= 1, "model.latent_dim", "must be at least 1"),
            (self.model.inversion_steps >= 0, "model.inversion_steps", "must be >= 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"{name} {message}")
        return self


def _plain_name(name: str) -> bool:
    # The run directory is CHECKPOINTS_DIR/NAME: anything that walks elsewhere is refused.
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _intensity_checks(data: DataConfig) -> list[tuple[bool, str, str]]:
    checks = []
    for side in ("a", "b"):
        mode, value = getattr(data, f"intensity_{side}"), getattr(data, f"intensity_range_{side}")
        checks.append((mode != "range" or value is not None, f"data.intensity_{side}",
                       f"range needs --intensity-range-{side} MIN MAX"))
        checks.append((value is None or value[1] > value[0], f"data.intensity_range_{side}",
                       f"MAX must be above MIN, got {value}"))
    low, high = data.intensity_percentiles
    checks.append((0 <= low < high <= 100, "data.intensity_percentiles", "must be LOW HIGH with 0 <= LOW < HIGH <= 100"))
    return checks


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


def _from_dict(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'} must be a JSON object, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown field {where}{unknown[0]} (known: {', '.join(sorted(known))})")
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        path = f"{where}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _from_dict(hint, value, path + ".")
        else:
            values[name] = _check_type(value, hint, path)
    return cls(**values)


def _check_type(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(value, inner, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path} must be a list of {len(args)} values, got {value!r}")
        return tuple(_check_type(v, a, path) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {path}")


# ---------------------------------------------------------------- command line


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, skip: set[str] = frozenset()) -> None:
    """Add one option per config field (all sections), defaults left unset.

    Options default to None so that `config_from_args` can tell what the user
    typed; the help text shows the real default from the dataclass.
    """
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            hint = hints[f.name]
            help_text = f.metadata["help"]
            if "(default:" not in help_text:  # some say what their default means themselves
                help_text += f" (default: {f.default})"
            kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
            base = hint
            if typing.get_origin(hint) in (types.UnionType, typing.Union):
                (base,) = [a for a in typing.get_args(hint) if a is not type(None)]
            if base is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif typing.get_origin(base) is Literal:
                kwargs["choices"] = list(typing.get_args(base))
            elif typing.get_origin(base) is tuple:  # e.g. MIN MAX
                kwargs.update(nargs=len(typing.get_args(base)), type=typing.get_args(base)[0], metavar="N")
            else:
                kwargs["type"] = base
                kwargs["metavar"] = "N" if base in (int, float) else "S"
            group.add_argument(_flag(f.name), **kwargs)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """Overlay the options the user gave on `base` (defaults when None)."""
    base = base or TrainConfig()
    sections = {}
    for section, cls in SECTIONS.items():
        current = getattr(base, section)
        changes = {
            f.name: tuple(v) if isinstance(v := getattr(args, f.name), list) else v  # nargs options give lists
            for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None
        }
        sections[section] = dataclasses.replace(current, **changes)
    return TrainConfig(**sections)


def config_diff(old: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """Fields that differ, as (section.field, old, new)."""
    diffs = []
    for section in SECTIONS:
        a, b = getattr(old, section), getattr(new, section)
        for f in dataclasses.fields(a):
            if getattr(a, f.name) != getattr(b, f.name):
                diffs.append((f"{section}.{f.name}", getattr(a, f.name), getattr(b, f.name)))
    return diffs
