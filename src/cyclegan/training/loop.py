"""The training loop: data -> step -> log, samples, checkpoints. One function, top to bottom."""

from __future__ import annotations

import csv
import io
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import smoke
from ..config import ConfigError, TrainConfig, config_diff
from ..atomic import write_text_atomic
from ..data import PairSampler, build_train_dataset, cache_if_it_fits
from ..data.collate import collate_same_size
from ..data.demo import demo_root
from ..data.formats import domain_format, resolve_formats
from ..import_run import WARM_START_KEY, warm_start_message
from ..models import CycleGANNets
from ..pool import ImagePool
from ..cpu_threads import use_threads
from ..precision import channels_last_pays, check_amp
from ..report import ReportRefresher
from ..tensorboard import TensorBoardLogger
from .checkpoint import (
    CheckpointError,
    Progress,
    latest_checkpoint,
    load_nets,
    load_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .samples import sample_batch, save_sample_grid
from .schedule import lr_factor
from .distributed import (
    ProcessGroup,
    any_process,
    close_process_group,
    gather_to_main,
    init_process_group,
    mean_over_processes,
    wrap_for_training,
)
from .evaluation import TrainingEvaluator
from .methods import METHODS
from .step import Optimizers, Pools

# Fields that only change how a run is watched or where it runs, never what it computes.
FREE_TO_CHANGE = {
    "run.max_steps", "run.device", "run.print_freq", "run.sample_freq", "run.save_latest_freq",
    "run.save_epoch_freq", "run.progress", "run.checkpoints_dir", "run.report_freq", "run.tensorboard",
    "run.amp", "run.compile", "run.threads", "run.eval_freq", "run.eval_size", "run.eval_dir",
    "data.num_workers", "data.cache_images",
}
# Fields a user may change on resume when they say so (--override-config): the run stays
# well defined (same networks, same data shapes), it just continues differently.
CHANGEABLE_WITH_OVERRIDE = {
    "optim.n_epochs", "optim.n_epochs_decay", "optim.lr_policy", "optim.lr_decay_iters", "optim.lr",
    "optim.beta1", "optim.beta2", "loss.gan_weight", "loss.lambda_a", "loss.lambda_b",
    "loss.lambda_identity", "loss.gan_mode", "data.dataroot", "data.on_bad_image",
}

N_SAMPLES = 4
LOG_FILE = "loss_log.csv"


def _to_device(batch: torch.Tensor | list[torch.Tensor], device: torch.device):
    return [t.to(device) for t in batch] if isinstance(batch, list) else batch.to(device)


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_resume_config(saved: TrainConfig, new: TrainConfig, override: bool) -> None:
    """Refuse a resume whose config changes what the run computes, listing every difference."""
    diffs = [d for d in config_diff(saved, new) if d[0] not in FREE_TO_CHANGE]
    refused = [d for d in diffs if not (override and d[0] in CHANGEABLE_WITH_OVERRIDE)]
    if refused:
        listed = "; ".join(f"{name}: {old!r} -> {new!r}" for name, old, new in refused)
        hint = (
            " (--override-config allows changing " + ", ".join(sorted(CHANGEABLE_WITH_OVERRIDE)) + ")"
            if any(d[0] in CHANGEABLE_WITH_OVERRIDE for d in refused)
            else "; start a new run with another --name instead"
        )
        raise CheckpointError(f"cannot resume with a different config: {listed}{hint}")


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stops before any checkpoint holds the damage."""


FINITE_CHECK_EVERY = 10  # steps between two checks: one host sync per check, not per step


def _check_finite(recent: list[torch.Tensor], last_step: int, run_dir: Path, names: tuple[str, ...]) -> None:
    """Raise naming the first non-finite loss term and its step among the recent steps."""
    if not recent:
        return
    stacked = torch.stack(recent)
    finite = torch.isfinite(stacked)
    if bool(finite.all()):
        recent.clear()
        return
    row, col = (~finite).nonzero()[0].tolist()
    step = last_step - len(recent) + 1 + row
    last_good = latest_checkpoint(run_dir)
    kept = f"the last good checkpoint {last_good} is kept" if last_good else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"loss {names[col]} became {float(stacked[row, col])} at step {step}; training stopped and {kept}. "
        "Lower --lr, check the data, or resume from that checkpoint with another --seed"
    )


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between steps so a checkpoint is never torn."""

    def __init__(self, announce: bool = True) -> None:
        self.signum: int | None = None
        self.announce = announce

    def __call__(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        self.signum = signum
        if self.announce:
            # A step can take many seconds: say at once that the signal was heard. The leading
            # newline keeps the line off the progress bar's.
            print(f"\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                  "(Ctrl-C again leaves at once, keeping the last checkpoint)", file=sys.stderr, flush=True)


@contextmanager
def _stop_on_signals(announce: bool = True) -> Iterator[_StopFlag]:
    flag = _StopFlag(announce)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.signal(s, flag) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _ignore_sigint_in_worker(_: int) -> None:
    # Ctrl-C reaches the whole process group; workers must leave it to the main process,
    # which saves a checkpoint before leaving.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _LossLog:
    """CSV of the loss terms averaged over each logging window."""

    def __init__(self, path: Path, resume_step: int, loss_names: tuple[str, ...]):
        self.path = path
        self.columns = ["step", "epoch", "lr", "sec_per_step", *loss_names]
        if path.exists() and resume_step > 0:
            # Rows logged after the checkpoint we resume from will be logged again.
            with open(path, newline="") as f:
                # a row cut short by a crash has empty trailing fields: drop it
                rows = [r for r in csv.DictReader(f)
                        if r.get(loss_names[-1]) and r["step"].isdigit() and int(r["step"]) <= resume_step]
            self._write(rows)
        else:
            self._write([])

    def _write(self, rows: list[dict]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.path, text.getvalue())

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow(row)


def train(cfg: TrainConfig, resume: bool = False, override_config: bool = False) -> Path:
    """Train (or continue) the run described by `cfg`; return its run directory.

    Under torchrun (WORLD_SIZE > 1) every process calls this; see `training/distributed.py`.

    The run directory is CHECKPOINTS_DIR/NAME (`cfg.run_dir()`). With `resume`, training continues
    from its latest checkpoint exactly; without it, a run directory that already holds a checkpoint
    is continued only when its saved config equals `cfg` (else CheckpointError lists the differences).
    `override_config` lets a resume change the schedule and loss weights (CHANGEABLE_WITH_OVERRIDE).
    Raises ConfigError, DatasetError, ImageLoadError, CheckpointError or NonFiniteLossError, each
    with a one-line message naming what to fix.
    """
    cfg = smoke.apply(cfg).validate()  # CYCLEGAN_SMOKE caps the steps (README tests)
    use_threads(cfg.run.threads)
    group, device_name = init_process_group(cfg.run.device)
    try:
        return _train(cfg, resume, override_config, group, device_name)
    finally:
        close_process_group(group)


def _train(cfg: TrainConfig, resume: bool, override_config: bool, group: ProcessGroup, device_name: str) -> Path:
    if group.distributed and cfg.model.method == "cogan":
        raise ConfigError("cogan trains on one process only (its two generators share one module); drop torchrun")
    main_process = group.is_main
    # channels, pixel type and intensity range of each domain, from its files (8-bit RGB: unchanged)
    cfg, format_notes = resolve_formats(cfg, Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root())
    for note in format_notes if main_process else []:
        print(note, flush=True)
    run_dir = cfg.run_dir()
    config_path = run_dir / "config.json"
    checkpoint = latest_checkpoint(run_dir)
    if resume:
        if checkpoint is None:
            raise CheckpointError(f"nothing to resume in {run_dir}: no checkpoint there (drop --resume to start it)")
        check_resume_config(TrainConfig.load(config_path), cfg, override_config)
        if main_process:
            print(f"resuming {run_dir} from {checkpoint.name}", flush=True)
    elif checkpoint is not None:
        # The same command run again (after a crash, say) continues the run; anything else
        # must not silently overwrite it.
        try:
            check_resume_config(TrainConfig.load(config_path), cfg, override=False)
        except (CheckpointError, ConfigError) as err:
            raise CheckpointError(
                f"{run_dir} already holds a run (checkpoint {checkpoint.name}) with another config: "
                f"{str(err).split(': ', 1)[-1]}; pass --resume (and --override-config) to continue it, "
                "or choose another --name"
            ) from None
        if main_process:
            print(f"resuming {run_dir} from {checkpoint.name} (same config)", flush=True)
        resume = True
    device = pick_device(device_name)
    if cfg.run.amp:
        check_amp(device)
    board = TensorBoardLogger(run_dir / "tensorboard") if cfg.run.tensorboard and main_process else None

    # ---- data
    root = Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root()
    dataset = build_train_dataset(cfg.data, root, cfg.model.input_nc, cfg.model.output_nc,
                                  formats=(domain_format(cfg, "A"), domain_format(cfg, "B")))
    # every process on this machine keeps its own copy
    cached = cache_if_it_fits(dataset, cfg.data.cache_images, copies=group.local_world_size)
    if cached and main_process:
        print(f"dataset decoded and resized once, kept in memory ({cached / 2**20:.0f} MiB)", flush=True)
    sampler = PairSampler(dataset.len_a, dataset.len_b, seed=cfg.run.seed, serial=cfg.data.serial_batches,
                          rank=group.rank, world_size=group.world_size, batch_size=cfg.optim.batch_size)
    loader = DataLoader(
        dataset,
        batch_size=cfg.optim.batch_size,
        sampler=sampler,
        collate_fn=collate_same_size,
        num_workers=cfg.data.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.num_workers > 0,
        worker_init_fn=_ignore_sigint_in_worker if cfg.data.num_workers > 0 else None,
        # Its own generator: creating an epoch's iterator must not draw from the global RNG,
        # or a resumed run (which creates one mid-epoch) would see other dropout masks.
        generator=torch.Generator().manual_seed(cfg.run.seed),
    )
    epoch_length = sampler.epoch_length  # items of each epoch's plan used by all processes together
    steps_per_epoch = math.ceil(epoch_length / (cfg.optim.batch_size * group.world_size))
    fixed = [dataset[(i % dataset.len_a, i % dataset.len_b, i)] for i in range(N_SAMPLES)]
    sample_a = _to_device(sample_batch([s["a"] for s in fixed]), device)  # lists when sizes differ
    sample_b = _to_device(sample_batch([s["b"] for s in fixed]), device)

    # ---- networks, optimisers, pools
    torch.manual_seed(cfg.run.seed)
    method = METHODS[cfg.model.method]
    nets = CycleGANNets.build(cfg.model, image_size=cfg.data.crop_size).to(device).train()
    if cfg.run.amp and channels_last_pays(device):
        nets.to(memory_format=torch.channels_last)  # the layout tensor cores want for convolutions
    step_nets = wrap_for_training(nets, group, device, compile=cfg.run.compile)  # same weights as `nets`
    betas = (cfg.optim.beta1, cfg.optim.beta2)
    optimizers = Optimizers(
        gen=torch.optim.Adam(nets.generator_parameters(), lr=cfg.optim.lr, betas=betas),
        disc=torch.optim.Adam(nets.discriminator_parameters(), lr=cfg.optim.lr, betas=betas),
    )
    pool_seed = (cfg.run.seed + 7919 * group.rank) * 2  # each process keeps its own history
    pools = Pools(fake_a=ImagePool(cfg.optim.pool_size, seed=pool_seed + 1),
                  fake_b=ImagePool(cfg.optim.pool_size, seed=pool_seed + 2))
    if group.distributed:
        # Same initial weights everywhere (seeded above; DDP also broadcasts rank 0's), then
        # each process draws its own dropout masks and latent codes.
        torch.manual_seed(cfg.run.seed + 7919 * group.rank)
    progress = Progress()
    if resume:
        load_nets(checkpoint, nets.by_name())
        state = load_state(checkpoint)
        if WARM_START_KEY in state:  # imported from the authors' code: weights only (import_run.py)
            if main_process:
                print(warm_start_message(state, run_dir), flush=True)
            epoch = state["progress"]["epoch"]
            progress = Progress(epoch=epoch, position=0, step=(epoch - 1) * steps_per_epoch)
        else:
            optimizers.gen.load_state_dict(state["opt_gen"])
            optimizers.disc.load_state_dict(state["opt_disc"])
            mine = state["ranks"][group.rank] if "ranks" in state else state
            if "ranks" in state and len(state["ranks"]) != group.world_size:
                raise CheckpointError(f"{checkpoint} was written by {len(state['ranks'])} processes; resume it with "
                                      f"as many (torchrun --nproc_per_node ...), not {group.world_size}")
            pools.fake_a.load_state_dict(mine["pool_a"], device)
            pools.fake_b.load_state_dict(mine["pool_b"], device)
            set_rng_state(mine["rng"])
            progress = Progress(**state["progress"])

    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(config_path)
    log = _LossLog(run_dir / LOG_FILE, progress.step, method.loss_names) if main_process else None
    evaluator = TrainingEvaluator.for_run(cfg, run_dir, device, group, progress.step)  # --eval-freq

    last_saved = progress.step

    recent: list[torch.Tensor] = []  # per-step loss vectors since the last finiteness check

    def checkpoint_now(name: str) -> None:
        nonlocal last_saved
        _check_finite(recent, progress.step, run_dir, method.loss_names)
        last_saved = progress.step
        own = {"pool_a": pools.fake_a.state_dict(), "pool_b": pools.fake_b.state_dict(), "rng": rng_state()}
        every_rank = gather_to_main(own, group)  # a collective: every process gets here at the same step
        if not main_process:
            return
        state = {
            "progress": vars(progress).copy(),
            "opt_gen": optimizers.gen.state_dict(),
            "opt_disc": optimizers.disc.state_dict(),
            **(own if not group.distributed else {"ranks": every_rank}),
        }
        save_checkpoint(run_dir, nets.by_name(), state, name)

    total_steps = cfg.total_epochs * steps_per_epoch
    if cfg.run.max_steps is not None:
        total_steps = min(total_steps, cfg.run.max_steps)
    if progress.step >= total_steps:
        if main_process:
            print(f"{run_dir}: already at step {progress.step} of {total_steps}; nothing to do")
        return run_dir
    if main_process:
        processes = f" x {group.world_size} processes" if group.distributed else ""
        print(f"training {run_dir} on {device}{processes}: {epoch_length} pairs per epoch, {total_steps} steps; "
              f"sample grids in {run_dir / 'samples'}", flush=True)
    bar = tqdm(total=total_steps, initial=progress.step, disable=not (cfg.run.progress and main_process),
               unit="it", dynamic_ncols=True)
    window: dict[str, torch.Tensor] = {}
    window_start, window_steps = time.perf_counter(), 0
    # HTML page, rewritten in a background thread
    report = ReportRefresher(run_dir, cfg.run.report_freq) if main_process else nullcontext()
    stopping = False  # the same on every process: set only where processes agree on it

    with _stop_on_signals(announce=main_process) as stop, report, board or nullcontext():
        while progress.epoch <= cfg.total_epochs and progress.step < total_steps:
            lr = cfg.optim.lr * lr_factor(progress.epoch, cfg.optim)
            for opt in (optimizers.gen, optimizers.disc):
                for param_group in opt.param_groups:
                    param_group["lr"] = lr
            sampler.set_epoch(progress.epoch, start=progress.position)
            for batch in loader:
                real_a = batch["a"].to(device, non_blocking=True)
                real_b = batch["b"].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.run.amp):
                    losses = method.step(step_nets, optimizers, pools, real_a, real_b, cfg.loss)
                recent.append(torch.stack([losses[k] for k in method.loss_names]))
                progress.step += 1
                progress.position += real_a.shape[0] * group.world_size
                window_steps += 1
                for name, value in losses.items():
                    window[name] = window.get(name, 0) + value
                bar.update(1)

                if progress.step % FINITE_CHECK_EVERY == 0:
                    _check_finite(recent, progress.step, run_dir, method.loss_names)
                    stopping = any_process(stop.signum is not None, group)
                elif not group.distributed:
                    stopping = stop.signum is not None
                if progress.step % cfg.run.print_freq == 0 or progress.step == total_steps:
                    _check_finite(recent, progress.step, run_dir, method.loss_names)
                    elapsed = time.perf_counter() - window_start
                    means = {k: float(v) / window_steps for k, v in window.items()}  # the one host sync
                    means = mean_over_processes(means, group)
                    steps_in_row = window_steps
                    window, window_start, window_steps = {}, time.perf_counter(), 0
                if main_process and (progress.step % cfg.run.print_freq == 0 or progress.step == total_steps):
                    log.append({"step": progress.step, "epoch": progress.epoch, "lr": f"{lr:.3e}",
                                "sec_per_step": f"{elapsed / steps_in_row:.4f}",
                                **{k: f"{v:.5f}" for k, v in means.items()}})
                    bar.set_postfix_str(f"ep {progress.epoch} " + " ".join(f"{k}={v:.3f}" for k, v in means.items()))
                    if board is not None:
                        board.log_losses(progress.step, means, lr, elapsed / steps_in_row)
                if main_process and (progress.step % cfg.run.sample_freq == 0 or progress.step == total_steps):
                    grid = save_sample_grid(nets, sample_a, sample_b, run_dir / "samples" / f"step_{progress.step:08d}.png")
                    if board is not None:
                        board.log_image(progress.step, "samples", grid)
                evaluator.after_step(progress.step, nets, board, last=progress.step >= total_steps)
                if main_process:
                    report.maybe_refresh(progress.step)
                if progress.step >= total_steps or stopping:
                    break
                if progress.step % cfg.run.save_latest_freq == 0 and progress.position < epoch_length:
                    checkpoint_now(f"step_{progress.step:08d}")
            if progress.position >= epoch_length:  # the epoch ran to its end
                finished = progress.epoch
                progress.epoch += 1
                progress.position = 0
                keep = finished % cfg.run.save_epoch_freq == 0 or finished == cfg.total_epochs
                checkpoint_now(f"epoch_{finished:04d}" if keep else f"step_{progress.step:08d}")
            if stopping:
                break
    bar.close()
    if progress.step != last_saved:
        checkpoint_now(f"step_{progress.step:08d}")
    if not main_process:
        return run_dir
    if stopping:
        by = signal.Signals(stop.signum).name if stop.signum is not None else "a signal to another process"
        print(f"stopped by {by} at step {progress.step}; checkpoint saved. "
              f"Continue with: cyclegan train {cfg.data.dataroot or ''} --name {cfg.run.name} "
              f"--checkpoints-dir {cfg.run.checkpoints_dir} --resume".replace("  ", " "), flush=True)
        if stop.signum == signal.SIGINT:
            # Ctrl-C in a script calling cyclegan.train() must stop the script too, as Ctrl-C
            # does anywhere in Python; the checkpoint is already on disk (the CLI exits 130).
            raise KeyboardInterrupt
    else:
        print(f"done: step {progress.step}, epoch {min(progress.epoch, cfg.total_epochs)}; run directory {run_dir}")
    return run_dir
