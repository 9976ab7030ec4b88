"""Command line: `cyclegan train | translate | evaluate | export | report | study | study-results`.

Every parser of every command is defined here, and nowhere else. Every training option is
generated from the config dataclasses (config.py), so `cyclegan train --help` lists them all
with their defaults. Errors a user can fix are one line (`cyclegan: error: ...`, status 2);
a run stopped by a signal exits with 128 + the signal's number after its checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
import webbrowser
from pathlib import Path

import torch

from . import __version__
from .authors_options import with_our_names
from .cli_help import OneDefaultFormatter, demo_epilog
from .config import DIRECTIONS, ConfigError, RunConfig, TrainConfig, add_config_arguments, config_from_args
from .cpu_threads import LoadAwareThreads, use_threads
from .data.demo import demo_config
from .data.images import DatasetError, ImageLoadError
from .detectors import print_findings
from .evaluate import default_cache_dir, evaluate_run, paired_folder_scores
from .export import FORMATS, ONNX_INSTALL, ExportError, export_generator
from .methods import with_method_defaults
from .evaluate_cli import check_folder_options, results_table, size_hint
from .metrics import MetricsDependencyError, fid_kid
from .report import write_report
from .rundir import RunDir, RunDirError, find_config, write_text
from .study.commands import serve_study, study_results
from .study.protocol import MIN_IMAGES, N_PRACTICE, N_SCORED
from .exported import is_exported
from . import dataset_zoo, import_run, pretrained, serve
from .download import DownloadError
from .serve import ServeError
from .memory import parse_bytes
from .outputs import OutputError
from .metrics.protocols import DEFAULT_PROTOCOL, PROTOCOLS, folder_scores, get_protocol
from .training.loop import NonFiniteLossError, train
from .training.signals import TrainingStopped, exit_status
from .translate import Translator, tile_overlap

THREADS_HELP = ("CPU threads for torch (0: torch's default, at most the CPUs this process may use; "
                "OMP_NUM_THREADS if set)")
# translate follows the load as training does: the run setting's own text
FOLLOWING_THREADS_HELP = next(f.metadata["help"] for f in dataclasses.fields(RunConfig) if f.name == "threads")

EXPECTED_ERRORS = (
    ConfigError, DatasetError, ImageLoadError, RunDirError, NonFiniteLossError, MetricsDependencyError,
    ExportError, TrainingStopped, FileNotFoundError, DownloadError, ServeError, OutputError,
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
        run = RunDir.of(probe)
        if not run.config_file.is_file():
            raise RunDirError(f"nothing to resume: {run.config_file} does not exist (check --name and "
                              "--checkpoints-dir)")
        base = run.read_config()
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
    p.add_argument("--direction", choices=list(DIRECTIONS), default="AtoB", help="which generator to apply")
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
                   help="bfloat16 autocast on CUDA or on a CPU with native bfloat16 "
                        "(AVX512-BF16/AMX): faster, output differs slightly from float32; refused elsewhere")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    p.add_argument("--threads", type=int, default=0, help=FOLLOWING_THREADS_HELP)
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
    follow_load = LoadAwareThreads.for_run(args.threads, distributed=False)  # None: a fixed count
    if args.run.is_file() and args.run.suffix == ".safetensors" and not is_exported(args.run):
        config = args.config or find_config(args.run)
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
        follow_load=follow_load,
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
            write_text(args.json, json.dumps(scores, indent=2) + "\n")
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
    print(results_table(results, args.protocol))
    for direction, scores in results.items():
        print_findings(direction, scores.get("detectors"))
    out = RunDir(args.run).write_metrics(results, args.json)
    print(f"metrics written to {out}; report {write_report(args.run)}")
    return 0


def _report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html: losses, learning rate, timing, samples, evaluation, config",
        description="Write RUN_DIR/report.html, one self-contained page (images embedded) with the run's config, "
        "loss curves (sliding-window means), learning-rate schedule, time per step, newest sample grids and "
        "evaluation results (RUN_DIR/eval/metrics.json). Training refreshes it every --report-freq steps.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory written by `cyclegan train`")
    p.add_argument("--max-grids", type=int, default=6, help="newest sample grids shown")
    p.add_argument("--window", type=int, default=None,
                   help="log rows per sliding-window mean of the loss curves (default: about 1/40 of the log)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(func=_cmd_report)




def _cmd_report(args: argparse.Namespace) -> int:
    if args.max_grids < 0:
        raise ConfigError("--max-grids must be >= 0")
    if args.window is not None and args.window < 1:
        raise ConfigError("--window must be at least 1")
    path = write_report(args.run, max_grids=args.max_grids, window=args.window)
    print(path)
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print(f"no web browser found to open it; open {path.resolve().as_uri()} in one", file=sys.stderr)
    return 0


def _export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained generator to ONNX, TorchScript or safetensors (+ JSON)",
        description="Export one generator of a trained run to ONNX or TorchScript and check that it gives the "
        "PyTorch outputs (max abs difference <= 1e-4 on two input sizes). The model takes NCHW float32 in "
        "[-1, 1] with H and W multiples of the generator's size multiple (4 for resnet, 128/256 for unet): "
        "pad like `cyclegan translate` does.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory written by `cyclegan train`")
    p.add_argument("--direction", choices=list(DIRECTIONS), default="AtoB", help="which generator to export")
    p.add_argument("--format", dest="format", choices=list(FORMATS), default="onnx", help="file format")
    p.add_argument("--output", type=Path, required=True, help="file to write (e.g. model.onnx or model.pt)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (11 or newer)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip running the exported model against PyTorch")
    p.set_defaults(func=_cmd_export)




def _cmd_export(args: argparse.Namespace) -> int:
    info = export_generator(args.run, args.direction, args.format, args.output, args.opset, not args.no_verify)
    print(f"wrote {info['output']} ({info['format']}, {info['direction']}, H and W multiples of {info['size_multiple']})")
    if info["max_abs_diff"] is not None:
        shapes = ", ".join("x".join(map(str, s)) for s in info["verified_shapes"])
        print(f"max abs difference vs PyTorch: {info['max_abs_diff']:.3g} (inputs {shapes})")
    elif args.no_verify:
        print("max abs difference vs PyTorch: not checked (--no-verify)")
    else:
        print(f"max abs difference vs PyTorch: not checked (onnxruntime is not installed: {ONNX_INSTALL})")
    return 0


def _study_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="serve the real-vs-fake perceptual study (AMT protocol of the paper) on a local web page",
        description=f"Serve the perceptual study of the CycleGAN paper (Table 1): each participant sees "
        f"{N_PRACTICE + N_SCORED} pairs (one real, one generated image, side random) and clicks the real one; "
        f"the first {N_PRACTICE} are practice with feedback, the next {N_SCORED} are scored. With several "
        f"--fake folders each participant is assigned one of them, round-robin. Each folder needs at least "
        f"{MIN_IMAGES} images (they are reused across trials); files without an image extension are ignored. "
        "Answers are stored in the --db SQLite file; restarting on the same file continues the study, "
        "if the images are the same (their SHA-256 fingerprints are stored in it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--real", type=Path, required=True, help="folder of real images")
    p.add_argument("--fake", type=Path, action="append", required=True,
                   help="folder of generated images of one algorithm; repeat for several algorithms")
    p.add_argument("--db", type=Path, default=Path("study.sqlite3"), help="SQLite file the answers are stored in")
    p.add_argument("--new-study", action="store_true",
                   help="start a new study on --db even if it holds one (the old file is renamed "
                   "DB.YYYYmmdd-HHMMSS.old, never deleted); needed after the images changed")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: reachable from the network)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds each pair is displayed before the images are hidden; None: no limit")
    p.add_argument("--seed", type=int, default=None,
                   help="make trial plans reproducible (participant k uses SEED + k); None: random")
    p.set_defaults(func=serve_study)

    r = sub.add_parser(
        "study-results",
        help="per algorithm, %% of scored trials where the fake was chosen (+- standard error)",
        description="Summarise a study database: per algorithm the mean over participants of the percentage "
        "of scored trials in which the generated image was judged real, +- the standard error over "
        "participants (sample std / sqrt(n)), as in Table 1 of the paper. Only finished sessions count.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument("db", type=Path, help="the --db file written by `cyclegan study`")
    r.add_argument("--json", type=Path, default=None, help="also write the results here")
    r.set_defaults(func=study_results)


def _datasets_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "datasets", help="the authors' CycleGAN datasets: list, download",
        description="The CycleGAN datasets of the authors' download_cyclegan_dataset.sh, by name, from "
        f"$CYCLEGAN_DATASETS_URL (default {dataset_zoo.DATASETS_URL}).",
    )
    sub = p.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the names and what each holds")
    ls.set_defaults(func=dataset_zoo.cmd_list)
    dl = sub.add_parser("download", help="download, extract safely and check one dataset into ROOT/NAME")
    dl.add_argument("name", help="a name from `cyclegan datasets list`")
    dl.add_argument("--root", type=Path, default=Path("./datasets"), help="folder that receives NAME/")
    dl.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    dl.set_defaults(func=dataset_zoo.cmd_download)


def _import_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import",
        help="turn a run directory of the authors' code into one of ours",
        description="Import a training run of the authors' pytorch-CycleGAN-and-pix2pix code "
        "({E}_net_{G_A,G_B,D_A,D_B}.pth + train_opt.txt) as CHECKPOINTS_DIR/NAME: it then translates, "
        "evaluates, exports, and continues training (`cyclegan train --resume --name NAME`) as a warm start.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("source", type=Path, help="the authors' run folder (their checkpoints/NAME)")
    p.add_argument("--name", required=True, help="name of the new run directory")
    p.add_argument("--checkpoints-dir", type=Path, default=Path("./checkpoints"), help="folder holding run directories")
    p.add_argument("--epoch", default=None, help="which files: an epoch number or latest (default: the highest number)")
    p.add_argument("--dataroot", default=None, help="dataset folder for continuing (default: their --dataroot)")
    p.set_defaults(func=import_run.cmd_import)


def _pretrained_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrained", help="the authors' released CycleGAN models: list, download",
        description="The authors' 18 released CycleGAN generators, by name. They are downloaded on first use "
        f"(from $CYCLEGAN_ZOO_URL, default {pretrained.ZOO_URL}) into $CYCLEGAN_HOME/pretrained "
        "(default ~/.cache/cyclegan/pretrained). `cyclegan translate NAME ...` uses one directly.",
    )
    sub = p.add_subparsers(dest="pretrained_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="names, what each translates, and whether it is cached")
    ls.set_defaults(func=pretrained.cmd_list)
    dl = sub.add_parser("download", help="download (or resume) one model into the cache")
    dl.add_argument("name", help="a name from `cyclegan pretrained list`")
    dl.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    dl.set_defaults(func=pretrained.cmd_download)


def _serve_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="a local web page (and HTTP API) to try a model on your images",
        description="Serve MODEL (a run directory, a pretrained name, an authors' .pth, an exported "
        ".safetensors) on a local page: drop an image, see the translation beside it, download it. "
        "POST /api/translate takes an image and returns the PNG.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="what `cyclegan translate` accepts as MODEL")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, ...")
    p.add_argument("--max-bytes", type=int, default=serve.MAX_BYTES, help="largest upload accepted, in bytes")
    p.add_argument("--max-pixels", type=int, default=serve.MAX_PIXELS, help="largest image accepted, width x height")
    p.set_defaults(func=serve.cmd_serve)


def _evaluate_folder_by_protocol(args: argparse.Namespace, cache: Path | None) -> int:
    """--fake DIR --dataroot ROOT: DIR holds translations into --real-domain, scored under --protocol."""
    protocol = get_protocol(args.protocol)
    scores = folder_scores(args.fake, args.dataroot, protocol, args.real_domain, cache_dir=cache,
                           batch_size=args.batch_size, device=args.device, fid_method=args.fid_method)
    print(f"protocol {protocol.name}: FID {scores['fid']:.2f}   KID {scores['kid_mean']:.4f} +- {scores['kid_std']:.4f}"
          f"   ({scores['n_fake']} fake, {scores['n_real']} real)")
    if args.json:
        write_text(args.json, json.dumps(scores, indent=2) + "\n")
    return 0




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
    _study_parsers(sub)
    _export_parser(sub)
    _report_parser(sub)
    _pretrained_parser(sub)
    _import_parser(sub)
    _datasets_parser(sub)
    _serve_parser(sub)
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
    except KeyboardInterrupt as err:
        status = exit_status(err)
        if status is not None:  # a run stopped by a signal: the checkpoint is written, the way on printed
            return status
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
