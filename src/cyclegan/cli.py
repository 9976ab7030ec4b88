"""Command line: `cyclegan train | translate | evaluate`.

Every training option is generated from the config dataclasses (config.py), so
`cyclegan train --help` lists them all with their defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

from . import __version__
from .atomic import write_text_atomic
from .cpu_threads import use_threads
from .authors_options import with_our_names
from .cli_help import OneDefaultFormatter, demo_epilog
from .config import ConfigError, TrainConfig, add_config_arguments, config_from_args, with_method_defaults
from .data.demo import demo_config
from .data.images import DatasetError, ImageLoadError
from .detectors import print_findings
from .evaluate import default_cache_dir, evaluate_run, paired_folder_scores
from .evaluate_cli import check_folder_options, results_table, size_hint
from .metrics import MetricsDependencyError, fid_kid
from .metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, folder_scores, get_protocol
from .export import ExportError, add_export_parser
from .authors_cli import AUTHORS_ERRORS, add_authors_parsers
from .exported import is_exported
from .memory import parse_bytes
from .outputs import OutputError
from .report import add_report_parser, write_report
from .study import add_study_parsers
from .training.checkpoint import CheckpointError
from .training.loop import NonFiniteLossError, train
from .translate import Translator, tile_overlap

THREADS_HELP = ("CPU threads for torch (0: torch's default, at most the CPUs this process may use; "
                "OMP_NUM_THREADS if set)")

EXPECTED_ERRORS = (
    ConfigError, DatasetError, ImageLoadError, CheckpointError, NonFiniteLossError, MetricsDependencyError,
    ExportError, FileNotFoundError, OutputError, *AUTHORS_ERRORS,
)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a CycleGAN (no DATAROOT: the built-in demo)",
        description="Train a CycleGAN on DATAROOT (trainA/ + trainB/, or train/ with --dataset-mode aligned). "
        "Without DATAROOT, trains the demo preset on the built-in horse2zebra subset.",
        epilog=demo_epilog(demo_config()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("dataroot", nargs="?", default=None, help="dataset folder (omit for the built-in demo)")
    p.add_argument("--resume", action="store_true", help="continue the run CHECKPOINTS_DIR/NAME from its latest checkpoint")
    p.add_argument("--override-config", action="store_true",
                   help="with --resume: allow changing the schedule, loss weights or data folder of the run")
    p.add_argument("--config", type=Path, default=None, help="start from this config.json (options given here override it)")
    add_config_arguments(p, skip={"dataroot"})
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    if args.dataroot is not None:
        args.dataroot = str(Path(args.dataroot))
    if args.resume:
        probe = config_from_args(args, demo_config() if args.dataroot is None else None)
        saved = probe.run_dir() / "config.json"
        if not saved.is_file():
            raise CheckpointError(f"nothing to resume: {saved} does not exist (check --name and --checkpoints-dir)")
        base = TrainConfig.load(saved)
    elif args.config is not None:
        base = TrainConfig.load(args.config)
    else:
        base = demo_config() if args.dataroot is None else TrainConfig()
        if args.method is not None:
            base = with_method_defaults(base, args.method)
    cfg = config_from_args(args, base)
    train(cfg, resume=args.resume, override_config=args.override_config)
    return 0


def _translate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a trained run",
        description="Translate image files, folders or videos with a trained generator. Outputs are PNG files "
        "(videos: the same container) named after their inputs, at the input's size; existing files and inputs "
        "are never overwritten (see --overwrite).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, metavar="MODEL",
                   help="run directory written by `cyclegan train`, a generator .safetensors file, a pretrained "
                        "model name (`cyclegan pretrained list`), an authors' .pth or run directory")
    p.add_argument("inputs", nargs="+", help="image files, folders of images and/or videos (.mp4 .mov .mkv ...)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="which generator to apply")
    p.add_argument("--output-dir", type=Path, required=True, help="where translated images are written")
    p.add_argument("--config", type=Path, default=None,
                   help="config.json describing a bare weights file (default: the run's or the file's folder's)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (same-size images are batched); None: 1 on a CPU, 8 on a GPU")
    p.add_argument("--max-size", type=int, default=None,
                   help="translate images larger than this (longest side) at this size, then scale back")
    p.add_argument("--tile", type=int, default=None,
                   help="translate images larger than TILE px (at least 16) in TILE x TILE tiles: memory follows "
                        "the tile; ResNet generators give the whole-image result (whole-image instance-norm "
                        "statistics, slower), the U-Net blends overlapping tiles; None: whole images, tiled "
                        "automatically when they would not fit in --memory-budget")
    p.add_argument("--tile-overlap", type=int, default=None,
                   help="U-Net tiles only: pixels neighbouring tiles share and blend over, at most TILE/2; None: TILE/8")
    p.add_argument("--memory-budget", default=None,
                   help="memory a whole-image pass may use (e.g. 8G, 512M); larger images are tiled exactly. "
                        "None: the memory available when translating starts")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files in --output-dir (inputs are never overwritten)")
    p.add_argument("--cycle", action="store_true", help="also write OUTPUT_DIR/cycle/NAME.png: input | translated | reconstructed")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1, mps")
    p.add_argument("--amp", action="store_true",
                   help="bfloat16 autocast on CUDA (with channels_last) or on a CPU with native bfloat16 "
                        "(AVX512-BF16/AMX): faster, output differs slightly from float32; refused elsewhere")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    p.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    p.add_argument("--on-bad-image", choices=["error", "skip"], default="error",
                   help="an unreadable input: stop with an error naming it, or skip it with a warning naming it")
    p.set_defaults(func=_cmd_translate)


def _cmd_translate(args: argparse.Namespace) -> int:
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if args.max_size is not None and args.max_size < 16:
        raise ConfigError(f"--max-size must be at least 16 pixels, got {args.max_size}")
    try:
        budget = parse_bytes(args.memory_budget) if args.memory_budget is not None else None
    except ValueError as err:
        raise ConfigError(f"--memory-budget: {err}") from None
    tile_overlap(args.tile, args.tile_overlap)  # before the model loads: bad values fail at once
    use_threads(args.threads)
    if args.run.is_file() and args.run.suffix == ".safetensors" and not is_exported(args.run):
        config = args.config or _find_config(args.run)
        if args.cycle:
            raise ConfigError("--cycle needs both generators: pass the run directory instead of a weights file")
        translator = Translator.from_weights(args.run, config, args.direction, args.device, amp=args.amp)
    else:  # a run directory, a zoo name, an authors' .pth, an exported generator (pretrained.py)
        translator = Translator.from_pretrained(args.run, args.direction, args.device, with_inverse=args.cycle,
                                                amp=args.amp, progress=args.progress)
    skipped: list[Path] = []
    written = translator.translate_files(
        args.inputs, args.output_dir, batch_size=args.batch_size, max_size=args.max_size,
        cycle_view=args.cycle, progress=args.progress, tile=args.tile, overlap=args.tile_overlap,
        overwrite=args.overwrite, memory_budget=budget, on_bad_image=args.on_bad_image, skipped=skipped,
    )
    print(f"wrote {_count(len(written), 'file')} to {args.output_dir}"
          + (f" ({len(skipped)} unreadable skipped)" if skipped else ""))
    return 0


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="FID/KID of generated images, or of a trained run on its test set",
        description="Either compare two folders (--fake DIR --real DIR), or evaluate RUN_DIR by the unpaired "
        "protocol: translate all of testA, compare with testB (FID, KID, TF Inception features), and the "
        "reverse, with the cycle reconstruction error on the same images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", nargs="?", type=Path, default=None, help="run directory (omit when using --fake/--real)")
    p.add_argument("--fake", type=Path, default=None, help="folder of generated images")
    p.add_argument("--real", type=Path, default=None, help="folder of real images")
    p.add_argument("--json", type=Path, default=None,
                   help="also write the metrics here (RUN_DIR form: default RUN_DIR/eval/metrics.json)")
    p.add_argument("--paired", action="store_true",
                   help="--fake/--real form: also score each generated image against the real image of the same "
                        "name: RMSE and the share of pixels within --threshold (photos), or with --labels-from "
                        "per-pixel / per-class accuracy and class IoU (label maps)")
    p.add_argument("--labels-from", type=Path, default=None,
                   help="--fake/--real form: the images are label maps; learn their colour palette from the label "
                        "maps in this folder (e.g. the training labels). Implies --paired")
    p.add_argument("--threshold", type=float, default=5.0,
                   help="--paired photos: a pixel counts as right when no channel differs by this much (0-255)")
    p.add_argument("--dataroot", type=Path, default=None, help="RUN_DIR form: dataset holding testA/testB "
                   "(default: the one the run was trained on)")
    p.add_argument("--phase", default="test", help="RUN_DIR form: folders PHASEA and PHASEB (aligned: PHASE/)")
    p.add_argument("--labels", choices=["A", "B"], default=None,
                   help="RUN_DIR form, aligned data: the domain of label maps (scored by per-pixel / per-class "
                   "accuracy and class IoU against a palette learned from the training labels)")
    p.add_argument("--size", type=int, default=None,
                   help="RUN_DIR form: translate and compare at SIZE x SIZE (default: the images' own size); "
                        "for a run trained at reduced resolution pass its --load-size")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where real-image features are cached (default: ~/.cache/cyclegan/inception_features)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached features")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                   help="which published way of measuring to follow (translations, real set, resize; table in "
                        "docs/commands/evaluate.md); --fake/--real form: with --dataroot instead of --real, the "
                        "real set is the protocol's folders of --real-domain under DATAROOT")
    p.add_argument("--real-domain", choices=["A", "B"], default="B",
                   help="--fake/--dataroot form: the domain the --fake images were translated into")
    p.add_argument("--fid-method", choices=["sqrtm", "fast"], default="sqrtm",
                   help="sqrtm: scipy's matrix square root (the reference); fast: the same value from the features")
    p.add_argument("--batch-size", type=int, default=50, help="images per Inception forward pass")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, ...")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    p.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    use_threads(args.threads)
    if args.run is None and args.fake is not None and args.real is None and args.dataroot is not None:
        return _evaluate_folder_by_protocol(args, cache)
    if args.run is None:
        if args.fake is None or args.real is None:
            raise ConfigError("pass RUN_DIR, or both --fake DIR and --real DIR (or --fake DIR --dataroot DIR)")
        if args.protocol != DEFAULT_PROTOCOL:
            raise ConfigError(f"--protocol {args.protocol} defines the real images itself: pass --dataroot DIR "
                              "(holding testA/testB, trainA/trainB) instead of --real")
        check_folder_options(args.fake, args.real, args.labels_from)
        paired = None
        if args.paired or args.labels_from is not None:  # first: a bad pairing fails before minutes of features
            paired = paired_folder_scores(args.fake, args.real, args.labels_from, args.threshold)
        scores = fid_kid(args.fake, args.real, cache_dir=cache, batch_size=args.batch_size, device=args.device,
                         progress=args.progress, fid_method=args.fid_method)
        scores["protocol"] = DEFAULT_PROTOCOL
        print(f"FID {scores['fid']:.2f}   KID {scores['kid_mean']:.4f} +- {scores['kid_std']:.4f}   "
              f"({scores['n_fake']} fake, {scores['n_real']} real)")
        if paired is not None:
            print("paired: " + ", ".join(f"{k} {v:.4g}" for k, v in paired.items()))
            scores["paired"] = paired
        if args.json:
            write_text_atomic(args.json, json.dumps(scores, indent=2) + "\n")
        return 0
    if args.fake is not None or args.real is not None:
        raise ConfigError("pass either RUN_DIR or --fake/--real, not both")
    if args.paired or args.labels_from is not None:
        raise ConfigError("--paired and --labels-from belong to the --fake/--real form; for a run use --labels")
    if args.size is None:
        hint = size_hint(args.run, args.dataroot, args.phase)
        if hint:
            print(f"cyclegan: note: {hint}", file=sys.stderr, flush=True)
    results = evaluate_run(args.run, args.dataroot, args.phase, args.device, args.batch_size, cache,
                           args.fid_method, args.progress, args.labels, args.size, protocol=args.protocol)
    print(results_table(results))
    for direction, scores in results.items():
        print_findings(direction, scores.get("detectors"))
    out = args.json or args.run / "eval" / "metrics.json"
    write_text_atomic(out, json.dumps(results, indent=2) + "\n")
    print(f"metrics written to {out}; report {write_report(args.run)}")
    return 0


def _evaluate_folder_by_protocol(args: argparse.Namespace, cache: Path | None) -> int:
    """--fake DIR --dataroot ROOT: DIR holds translations into --real-domain, scored under --protocol."""
    protocol = get_protocol(args.protocol)
    scores = folder_scores(args.fake, args.dataroot, protocol, args.real_domain, cache_dir=cache,
                           batch_size=args.batch_size, device=args.device, fid_method=args.fid_method)
    print(f"protocol {protocol.name}: FID {scores['fid']:.2f}   KID {scores['kid_mean']:.4f} +- {scores['kid_std']:.4f}"
          f"   ({scores['n_fake']} fake, {scores['n_real']} real)")
    if args.json:
        write_text_atomic(args.json, json.dumps(scores, indent=2) + "\n")
    return 0


def _find_config(weights: Path) -> Path:
    for candidate in (weights.parent / "config.json", weights.parent.parent.parent / "config.json"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no config.json found for {weights}; pass --config RUN_DIR/config.json")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclegan",
        description="CycleGAN (Zhu et al., ICCV 2017): unpaired image-to-image translation. "
        "`cyclegan COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"cyclegan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _train_parser(sub)
    _translate_parser(sub)
    _evaluate_parser(sub)
    add_study_parsers(sub)
    add_export_parser(sub)
    add_report_parser(sub)
    add_authors_parsers(sub)
    for command in sub.choices.values():  # one "(default: ...)" per option, whoever built the parser
        if command.formatter_class is argparse.ArgumentDefaultsHelpFormatter:
            command.formatter_class = OneDefaultFormatter
    return parser


def _one_line(err: BaseException) -> str:
    # Errors raised in DataLoader workers arrive with the worker's traceback in the
    # message; the last line carries the original one.
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(err).__name__
    prefix = f"{type(err).__module__}.{type(err).__name__}: "
    return last[len(prefix):] if last.startswith(prefix) else last


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # One line naming what happened; where in the code it was raised (often inside torch's
    # data loader, for a skipped image) means nothing to a user of the command.
    print(f"cyclegan: warning: {message}", file=file or sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv = with_our_names(argv)  # the authors' option names: aliases, or one line naming ours
    except ConfigError as err:
        print(f"cyclegan: error: {err}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:  # plain `cyclegan`: what there is to do
        parser.print_help()
        return 0
    with warnings.catch_warnings():  # restores the usual display when main() returns (tests call it)
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except EXPECTED_ERRORS as err:
        print(f"cyclegan: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cyclegan: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - out-of-memory gets advice, everything else its traceback
        if isinstance(err, torch.cuda.OutOfMemoryError):
            print("cyclegan: error: out of GPU memory; lower --crop-size or --batch-size, "
                  "or use --generator resnet_6blocks / a smaller --ngf", file=sys.stderr)
            return 2
        if "can't allocate memory" in str(err) or isinstance(err, MemoryError):
            print("cyclegan: error: out of memory; translate: pass --tile 512 (or smaller) or --max-size; "
                  "train: lower --crop-size or --batch-size", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
