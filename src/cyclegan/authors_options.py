"""The authors' option names (pytorch-CycleGAN-and-pix2pix's train.py / test.py) on our command line.

One table, `AUTHORS_OPTIONS`, says for each of their options what ours is and whether the
command line accepts their spelling. Where the meaning is the same (`--n_epochs`, `--netG`,
`--load_size`, `--continue_train`, ...) it is an alias: `with_our_names` rewrites it to our
option before parsing, so `--help` lists each option once. Where it is not (`--gpu_ids`,
`--model`, `--epoch`, ...) the command fails with one line naming what to type instead.
docs/options.md shows the same table; tests/test_authors_options.py checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError


@dataclass(frozen=True)
class AuthorsOption:
    """One option of the authors' scripts: `command` is ours (train <- train.py, translate <- test.py)."""

    command: str
    name: str  # their spelling, e.g. "--n_epochs"
    ours: str  # our option ("--n-epochs"), positional ("DATAROOT", "INPUT") or what replaces it
    alias: bool  # accepted as typed (same meaning); otherwise an error naming `ours`
    hint: str = ""  # the error's advice, for options that are not aliases


def _aliases(command: str, pairs: dict[str, str]) -> list[AuthorsOption]:
    return [AuthorsOption(command, theirs, ours, alias=True) for theirs, ours in pairs.items()]


def _refused(command: str, names: tuple[str, ...], ours: str, hint: str) -> list[AuthorsOption]:
    return [AuthorsOption(command, name, ours, alias=False, hint=hint) for name in names]


_RESUME_HINT = "--resume continues from the latest checkpoint with its epoch and step; no counters to set"
_REPORT_HINT = "there is no visdom display: RUN_DIR/report.html is rewritten every --report-freq steps"

AUTHORS_OPTIONS: tuple[AuthorsOption, ...] = (
    *_aliases("train", {
        "--dataroot": "DATAROOT",
        "--checkpoints_dir": "--checkpoints-dir",
        "--input_nc": "--input-nc",
        "--output_nc": "--output-nc",
        "--netG": "--generator",
        "--netD": "--discriminator",
        "--n_layers_D": "--n-layers-d",
        "--init_type": "--init-type",
        "--init_gain": "--init-gain",
        "--no_dropout": "--no-dropout",
        "--dataset_mode": "--dataset-mode",
        "--serial_batches": "--serial-batches",
        "--num_threads": "--num-workers",
        "--batch_size": "--batch-size",
        "--load_size": "--load-size",
        "--crop_size": "--crop-size",
        "--max_dataset_size": "--max-dataset-size",
        "--no_flip": "--no-flip",
        "--n_epochs": "--n-epochs",
        "--n_epochs_decay": "--n-epochs-decay",
        "--lr_policy": "--lr-policy",
        "--lr_decay_iters": "--lr-decay-iters",
        "--gan_mode": "--gan-mode",
        "--pool_size": "--pool-size",
        "--lambda_A": "--lambda-a",
        "--lambda_B": "--lambda-b",
        "--lambda_identity": "--lambda-identity",
        "--lambda_L1": "--lambda-l1",
        "--print_freq": "--print-freq",
        "--display_freq": "--sample-freq",
        "--save_latest_freq": "--save-latest-freq",
        "--save_epoch_freq": "--save-epoch-freq",
        "--continue_train": "--resume",
    }),
    *_refused("train", ("--gpu_ids",), "--device", ""),
    *_refused("train", ("--model",), "--method", ""),
    *_refused("train", ("--save_by_iter",), "(always)", "checkpoints are always named by step; drop it"),
    *_refused("train", ("--epoch_count", "--epoch", "--load_iter"), "--resume", _RESUME_HINT),
    *_refused("train", ("--display_id", "--display_server", "--display_env", "--display_port", "--display_ncols",
                        "--update_html_freq", "--no_html"), "--report-freq", _REPORT_HINT),
    *_refused("train", ("--use_wandb", "--wandb_project_name"), "--tensorboard",
              "--tensorboard logs losses and sample grids to RUN_DIR/tensorboard"),
    *_refused("train", ("--verbose", "--suffix", "--display_winsize"), "(not needed)", "not needed here; drop it"),
    *_aliases("translate", {"--results_dir": "--output-dir"}),
    *_refused("translate", ("--dataroot", "--dataset_mode"), "INPUT",
              "pass the image files and/or folders as arguments after the run directory"),
    *_refused("translate", ("--name", "--checkpoints_dir"), "RUN_DIR",
              "pass the run directory (CHECKPOINTS_DIR/NAME) as the first argument"),
    *_refused("translate", ("--model", "--model_suffix"), "--direction",
              "--direction AtoB (or BtoA) picks the generator of the run"),
    *_refused("translate", ("--epoch",), "WEIGHTS",
              "pass RUN_DIR/checkpoints/epoch_NNNN/gen_ab.safetensors with --config RUN_DIR/config.json"),
    *_refused("translate", ("--preprocess", "--load_size", "--aspect_ratio"), "--max-size",
              "not needed: any size is translated as is; --max-size bounds very large images"),
    *_refused("translate", ("--num_test",), "INPUT", "pass the files you want translated"),
    *_refused("translate", ("--eval",), "(always)", "translation always runs in evaluation mode; drop it"),
    *_refused("translate", ("--gpu_ids",), "--device", ""),
)

# Their commands: `python test.py` is `cyclegan translate`.
AUTHORS_COMMANDS = {"test": "translate RUN_DIR INPUT... --output-dir DIR --direction AtoB"}


def _gpu_ids_hint(value: str | None, command: str) -> str:
    if value is None:
        return "--device auto|cpu|cuda|cuda:N"
    ids = [v for v in value.split(",") if v.strip()]
    if ids == ["-1"]:
        return "--device cpu"
    if len(ids) == 1 or command != "train":
        return f"--device cuda:{ids[0].strip()}" + ("" if len(ids) == 1 else f" ({command} uses one device)")
    return (f"torchrun --nproc_per_node {len(ids)} -m cyclegan {command} ... (one process per GPU; "
            "CUDA_VISIBLE_DEVICES picks which)")


def _model_hint(value: str | None, command: str) -> str:
    if command == "translate":
        return "--direction AtoB (or BtoA) on the run directory"
    methods = {"cycle_gan": "--method cyclegan (the default)", "pix2pix": "--method pix2pix"}
    if value == "test":
        return "cyclegan translate RUN_DIR INPUT... --direction AtoB --output-dir DIR"
    return methods.get(value or "", "--method cyclegan|pix2pix|simgan|bigan|cogan")


def _refusal(entry: AuthorsOption, value: str | None) -> str:
    if entry.name == "--gpu_ids":
        advice = f"use {_gpu_ids_hint(value, entry.command)}"
    elif entry.name == "--model":
        advice = f"use {_model_hint(value, entry.command)}"
    else:
        advice = entry.hint
    return f"{entry.name} is the authors' option, not ours: {advice} (see docs/options.md)"


def _takes_value(entry: AuthorsOption) -> bool:
    # Their flags without a value: everything else reads one.
    return entry.name not in {"--no_dropout", "--no_flip", "--serial_batches", "--continue_train",
                              "--save_by_iter", "--no_html", "--use_wandb", "--verbose", "--eval"}


def with_our_names(argv: list[str]) -> list[str]:
    """`argv` (after `cyclegan`) with the authors' aliases replaced by our options.

    Raises ConfigError naming our option for their options that mean something else here,
    and for their `test` command. Arguments after `--` are left alone.
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in AUTHORS_COMMANDS:
        raise ConfigError(f"`{command}` is the authors' script; here it is `cyclegan {AUTHORS_COMMANDS[command]}`")
    table = {e.name: e for e in AUTHORS_OPTIONS if e.command == command}
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out += argv[i:]
            break
        name, eq, inline = token.partition("=")
        entry = table.get(name) if token.startswith("--") else None
        if entry is None:
            out.append(token)
        elif not entry.alias:
            value = inline if eq else (argv[i + 1] if _takes_value(entry) and i + 1 < len(argv) else None)
            raise ConfigError(_refusal(entry, value))
        elif entry.ours.isupper():  # a positional argument of ours
            if eq:
                out.append(inline)
            elif i + 1 < len(argv):
                out.append(argv[i + 1])
                i += 1
        else:
            out.append(entry.ours + eq + inline)
        i += 1
    return out
