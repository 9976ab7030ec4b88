"""The training loop: data -> step -> log, samples, checkpoints. One function, top to bottom."""

from __future__ import annotations

import math
import shlex
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import smoke
from ..config import ConfigError, TrainConfig
from ..data import PairSampler, build_train_dataset, cache_if_it_fits
from ..data.collate import collate_same_size
from ..data.demo import demo_root
from ..data.formats import domain_format, resolve_formats
from ..import_run import WARM_START_KEY, warm_start_message
from ..cpu_threads import LoadAwareThreads, use_threads
from ..device import resolve_device
from ..methods import METHODS, check_config
from ..precision import check_amp
from ..report.refresher import ReportRefresher
from ..rundir import LossLog, RunDir, RunDirError
from ..tensorboard import TensorBoardLogger
from .distributed import (
    ProcessGroup,
    any_process,
    barrier,
    close_process_group,
    gather_to_main,
    init_process_group,
    mean_over_processes,
    wrap_for_training,
)
from .resume import absolute_dataroot, check_resume_config, dataset_changes
from .samples import render_sample_grid, sample_batch
from .schedule import lr_factor
from .evaluation import TrainingEvaluator
from .signals import (
    interrupted,
    TrainingStopped,
    WorkerDeathsBetweenSteps,
    ignore_stop_signals_in_worker,
    WORKER_DEATH_ERRORS,
    is_worker_death,
    stop_on_signals,
)
from .state import Progress, TrainingState

N_SAMPLES = 4
FINITE_CHECK_EVERY = 10  # steps between two checks: one host sync per check, not per step


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the run stops before any checkpoint holds the damage."""


def _check_finite(recent: list[torch.Tensor], last_step: int, run: RunDir, names: tuple[str, ...]) -> None:
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
    last_good = run.latest_checkpoint()
    kept = f"the last good checkpoint {last_good} is kept" if last_good else "no checkpoint was written yet"
    raise NonFiniteLossError(
        f"loss {names[col]} became {float(stacked[row, col])} at step {step}; training stopped and {kept}. "
        "Lower --lr, check the data, or resume from that checkpoint with another --seed"
    )


def _to_device(batch: torch.Tensor | list[torch.Tensor], device: torch.device):
    return [t.to(device) for t in batch] if isinstance(batch, list) else batch.to(device)


def resume_command(cfg: TrainConfig) -> str:
    """The command that continues this run, quoted for a POSIX shell (the rest comes from config.json)."""
    return shlex.join(["cyclegan", "train", "--resume", "--name", cfg.run.name,
                       "--checkpoints-dir", cfg.run.checkpoints_dir])


def _file_lists(dataset, root: Path) -> dict[str, list[str]]:
    """The training files by folder, relative to the dataset root: the run's dataset fingerprint."""
    groups = {"A": dataset.files_a, "B": dataset.files_b} if hasattr(dataset, "files_a") else {"": dataset.files}
    lists: dict[str, list[str]] = {}
    for files in groups.values():
        for path in files:
            rel = Path(path).relative_to(root) if Path(path).is_relative_to(root) else Path(path)
            lists.setdefault(str(rel.parent), []).append(rel.name)
    return lists


def train(cfg: TrainConfig, resume: bool = False, override_config: bool = False) -> Path:
    """Train (or continue) the run described by `cfg`; return its run directory.

    Under torchrun (WORLD_SIZE > 1) every process calls this; see `training/distributed.py`.

    The run directory is CHECKPOINTS_DIR/NAME (`cfg.run_dir()`), locked for the whole run. With
    `resume`, training continues from its latest checkpoint exactly; without it, a run directory
    that already holds a checkpoint is continued only when its saved config equals `cfg` (else
    RunDirError lists the differences). `override_config` lets a resume change the schedule, loss
    weights and data (CHANGEABLE_WITH_OVERRIDE; a changed dataset gives a new plan from the next
    epoch). Raises ConfigError, DatasetError, ImageLoadError, RunDirError, NonFiniteLossError or
    TrainingStopped, each with a one-line message naming what to fix, and KeyboardInterrupt after the checkpoint when SIGINT, SIGTERM or SIGHUP stops the run.
    """
    cfg = smoke.apply(cfg)  # CYCLEGAN_SMOKE caps the steps (README tests)
    typed_dataroot = cfg.data.dataroot
    cfg = absolute_dataroot(check_config(cfg))
    use_threads(cfg.run.threads)
    group, device_name = init_process_group(cfg.run.device)
    try:
        if group.distributed and not METHODS[cfg.model.method].distributed:
            raise ConfigError(f"{cfg.model.method} trains on one process only; drop torchrun")
        run = RunDir.of(cfg)
        say = (lambda text: print(text, flush=True)) if group.is_main else (lambda text: None)
        with run.lock(say) if group.is_main else nullcontext():
            run_dir = _train(cfg, run, resume, override_config, group, device_name, typed_dataroot, say)
        # Leave together: a process that closed its group while rank 0 was still saving could take
        # gloo's threads down mid-exchange (seen once in CI as SIGABRT, "terminate called ...").
        barrier(group)
        return run_dir
    finally:
        close_process_group(group)


def _checkpoint_to_resume(cfg: TrainConfig, run: RunDir, resume: bool, override_config: bool, say) -> Path | None:
    """The checkpoint this run continues from (None: a new run), or RunDirError saying why not."""
    checkpoint = run.latest_checkpoint(notify=say)
    if resume:
        if checkpoint is None:
            raise RunDirError(f"nothing to resume in {run.path}: no checkpoint there (drop --resume to start it)")
        check_resume_config(run.read_config(), cfg, override_config)
    elif checkpoint is not None:
        # The same command run again (after a crash, say) continues the run; anything else
        # must not silently overwrite it.
        try:
            check_resume_config(run.read_config(), cfg, override=False)
        except (RunDirError, ConfigError) as err:
            raise RunDirError(
                f"{run.path} already holds a run (checkpoint {checkpoint.name}) with another config: "
                f"{str(err).split(': ', 1)[-1]}; pass --resume (and --override-config) to continue it, "
                "or choose another --name"
            ) from None
    if checkpoint is not None:
        say(f"resuming {run.path} from {checkpoint.name}")
    return checkpoint


@dataclass
class _Data:
    root: Path
    files: dict[str, list[str]]  # the dataset fingerprint kept in the run directory
    changes: list[str]  # how the files differ from the run's start (accepted with --override-config)
    sampler: PairSampler
    loader: DataLoader
    epoch_length: int  # items of each epoch's plan used by all processes together
    steps_per_epoch: int
    sample_a: torch.Tensor | list[torch.Tensor]  # the fixed images of the sample grids
    sample_b: torch.Tensor | list[torch.Tensor]


def _data(cfg: TrainConfig, run: RunDir, resuming: bool, override_config: bool, group: ProcessGroup,
          device: torch.device, say) -> _Data:
    root = Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root()
    dataset = build_train_dataset(cfg.data, root, cfg.model.input_nc, cfg.model.output_nc,
                                  formats=(domain_format(cfg, "A"), domain_format(cfg, "B")))
    files = _file_lists(dataset, root)
    saved = run.read_dataset() if resuming else None
    changes = dataset_changes(saved["files"], files) if saved else []
    if changes and not override_config:
        raise RunDirError(
            f"the dataset in {root} changed since this run started: {'; '.join(changes)}. Put it back, start a "
            "new run under another --name, or pass --resume --override-config to continue with the files there "
            "now (a new plan from the next epoch)"
        )
    # every process on this machine keeps its own copy
    cached = cache_if_it_fits(dataset, cfg.data.cache_images, copies=group.local_world_size)
    if cached:
        say(f"dataset decoded and resized once, kept in memory ({cached / 2**20:.0f} MiB)")
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
        worker_init_fn=ignore_stop_signals_in_worker if cfg.data.num_workers > 0 else None,
        # Its own generator: creating an epoch's iterator must not draw from the global RNG,
        # or a resumed run (which creates one mid-epoch) would see other dropout masks.
        generator=torch.Generator().manual_seed(cfg.run.seed),
    )
    fixed = [dataset[(i % dataset.len_a, i % dataset.len_b, i)] for i in range(N_SAMPLES)]
    return _Data(
        root, files, changes, sampler, loader, sampler.epoch_length,
        math.ceil(sampler.epoch_length / (cfg.optim.batch_size * group.world_size)),
        # lists when the sizes differ (non-cropping --preprocess)
        _to_device(sample_batch([s["a"] for s in fixed]), device), _to_device(sample_batch([s["b"] for s in fixed]), device),
    )


def _restore(state: TrainingState, run: RunDir, checkpoint: Path, group: ProcessGroup, data: _Data, say) -> None:
    """Load a checkpoint into `state`; a changed dataset (accepted) starts the next epoch."""
    run.load_nets(checkpoint, state.nets.by_name())
    saved = run.load_state(checkpoint)
    if WARM_START_KEY in saved:  # imported from the authors' code: weights only (import_run.py)
        say(warm_start_message(saved, run.path))
        epoch = saved["progress"]["epoch"]
        state.progress = Progress(epoch=epoch, position=0, step=(epoch - 1) * data.steps_per_epoch)
        return
    state.load_state_dict(saved, group.rank, group.world_size, where=str(run.state_file(checkpoint)))
    progress = state.progress
    if data.changes and progress.position > 0:
        say(f"the dataset changed ({'; '.join(data.changes)}): epoch {progress.epoch} is cut short at step "
            f"{progress.step}; epoch {progress.epoch + 1} starts with the files there now")
        progress.epoch, progress.position = progress.epoch + 1, 0
        state.window.clear()
    elif progress.position > data.epoch_length:
        raise RunDirError(f"{checkpoint} stands at item {progress.position} of an epoch that has "
                          f"{data.epoch_length} items now: the dataset in {data.root} changed; put it back, or pass "
                          "--resume --override-config to continue with a new plan from the next epoch")


def _train(cfg: TrainConfig, run: RunDir, resume: bool, override_config: bool, group: ProcessGroup,
           device_name: str, typed_dataroot: str | None, say) -> Path:
    main_process = group.is_main
    # channels, pixel type and intensity range of each domain, from its files (8-bit RGB: unchanged)
    cfg, format_notes = resolve_formats(cfg, Path(cfg.data.dataroot) if cfg.data.dataroot else demo_root())
    for note in format_notes:
        say(note)
    check_config(cfg)
    method = METHODS[cfg.model.method]
    if main_process:
        run.clean_temporary()
    checkpoint = _checkpoint_to_resume(cfg, run, resume, override_config, say)
    device = resolve_device(device_name)
    if cfg.run.amp:
        check_amp(device)

    # ---- data, and the dataset the run started on
    data = _data(cfg, run, checkpoint is not None, override_config, group, device, say)
    sampler, loader, epoch_length = data.sampler, data.loader, data.epoch_length

    # ---- networks, optimisers, pools, progress
    state = TrainingState.build(cfg, device, rank=group.rank)
    nets = state.nets
    step_nets = wrap_for_training(nets, group, device, compile=cfg.run.compile)  # same weights as `nets`
    if group.distributed:
        # Same initial weights everywhere (seeded above; DDP also broadcasts rank 0's), then
        # each process draws its own dropout masks and latent codes.
        torch.manual_seed(cfg.run.seed + 7919 * group.rank)
    if checkpoint is not None:
        _restore(state, run, checkpoint, group, data, say)
    progress = state.progress

    if main_process:
        run.write_config(cfg)
        run.write_dataset({"root": str(data.root), "as_typed": typed_dataroot, "files": data.files})
    log = LossLog(run, method.loss_names, progress.step, cfg.run.print_freq) if main_process else None
    board = TensorBoardLogger(run.tensorboard_dir) if cfg.run.tensorboard and main_process else None
    evaluator = TrainingEvaluator.for_run(cfg, run.path, device, group, progress.step)  # --eval-freq

    last_saved = progress.step
    recent: list[torch.Tensor] = []  # per-step loss vectors since the last finiteness check

    def checkpoint_now(name: str) -> None:
        nonlocal last_saved
        _check_finite(recent, progress.step, run, method.loss_names)
        last_saved = progress.step
        every_rank = gather_to_main(state.process_state(), group)  # a collective: all processes, same step
        if main_process:
            run.save_checkpoint(nets.by_name(), state.state_dict(every_rank), name)

    total_steps = cfg.total_epochs * data.steps_per_epoch
    if cfg.run.max_steps is not None:
        total_steps = min(total_steps, cfg.run.max_steps)
    if progress.step >= total_steps:
        say(f"{run.path}: already at step {progress.step} of {total_steps}; nothing to do")
        return run.path
    processes = f" x {group.world_size} processes" if group.distributed else ""
    say(f"training {run.path} on {device}{processes}: {epoch_length} pairs per epoch, {total_steps} steps; "
        f"sample grids in {run.samples_dir}")
    bar = tqdm(total=total_steps, initial=progress.step, disable=not (cfg.run.progress and main_process),
               unit="it", dynamic_ncols=True)
    window = state.window
    window_start = time.perf_counter()
    # HTML page, rewritten in a background thread
    report = ReportRefresher(run.path, cfg.run.report_freq) if main_process else nullcontext()
    stopping = False  # the same on every process: set only where processes agree on it
    dead_worker: Exception | None = None
    threads = LoadAwareThreads.for_run(cfg.run.threads, group.distributed)  # None: a fixed count

    with stop_on_signals(announce=main_process) as stop, WorkerDeathsBetweenSteps() as workers, report, board or nullcontext():
        while progress.epoch <= cfg.total_epochs and progress.step < total_steps:
            lr = cfg.optim.lr * lr_factor(progress.epoch, cfg.optim)
            state.set_lr(lr)
            sampler.set_epoch(progress.epoch, start=progress.position)
            batches = None
            while True:
                try:  # a new epoch's iterator waits for the workers too: a dead one shows up there as well
                    if batches is None:
                        batches = iter(loader)
                        workers.hold_back()
                    batch = next(batches)
                except StopIteration:
                    break
                except WORKER_DEATH_ERRORS as err:
                    if not is_worker_death(err):
                        raise
                    dead_worker = err
                    break
                real_a = batch["a"].to(device, non_blocking=True)
                real_b = batch["b"].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.run.amp):
                    losses = method.step(step_nets, state.optimizers, state.pools, real_a, real_b, cfg.loss)
                recent.append(torch.stack([losses[k] for k in method.loss_names]))
                progress.step += 1
                progress.position += real_a.shape[0] * group.world_size
                window.add(losses)
                bar.update(1)
                if threads is not None and (change := threads.update()):
                    bar.write(change)

                if progress.step % FINITE_CHECK_EVERY == 0:
                    _check_finite(recent, progress.step, run, method.loss_names)
                    stopping = any_process(stop.signum is not None, group)
                elif not group.distributed:
                    stopping = stop.signum is not None
                if progress.step % cfg.run.print_freq == 0 or progress.step == total_steps:
                    _check_finite(recent, progress.step, run, method.loss_names)
                    elapsed = time.perf_counter() - window_start
                    steps_in_row = window.steps
                    means = mean_over_processes(window.means(), group)
                    # The last row of a run that ends between two rows is a partial one: its window
                    # stays open (and goes into the checkpoint), so a resumed run drops that row and
                    # logs the full one in its place, as a run never interrupted would.
                    if progress.step % cfg.run.print_freq == 0:
                        window.clear()
                        window_start = time.perf_counter()
                    if main_process:
                        log.append({"step": progress.step, "epoch": progress.epoch, "lr": f"{lr:.3e}",
                                    "sec_per_step": f"{elapsed / steps_in_row:.4f}",
                                    **{k: f"{v:.5f}" for k, v in means.items()}})
                        bar.set_postfix_str(f"ep {progress.epoch} " + " ".join(f"{k}={v:.3f}" for k, v in means.items()))
                        if board is not None:
                            board.log_losses(progress.step, means, lr, elapsed / steps_in_row)
                if main_process and (progress.step % cfg.run.sample_freq == 0 or progress.step == total_steps):
                    grid = render_sample_grid(nets, data.sample_a, data.sample_b)
                    run.save_sample(grid, progress.step)
                    if board is not None:
                        board.log_image(progress.step, "samples", grid)
                evaluator.after_step(progress.step, nets, board, last=progress.step >= total_steps)
                if main_process:
                    report.maybe_refresh(progress.step)
                if progress.step >= total_steps or stopping:
                    break
                if progress.step % cfg.run.save_latest_freq == 0 and progress.position < epoch_length:
                    checkpoint_now(f"step_{progress.step:08d}")
            if dead_worker is not None:
                break
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

    saved = run.latest_checkpoint()
    saved_name = saved.name if saved is not None else "none"
    if dead_worker is not None:
        detail = str(dead_worker).strip().splitlines()[0].rstrip(". ")
        raise TrainingStopped(
            f"a data-loading worker died ({detail}; out of memory?) after step {progress.step}; checkpoint "
            f"{saved_name} holds that step. Use fewer --num-workers or --cache-images off, and continue with: "
            f"{resume_command(cfg)}"
        )
    if stopping:
        signum = stop.signum if stop.signum is not None else signal.SIGTERM
        by = signal.Signals(stop.signum).name if stop.signum is not None else "a signal to another process"
        message = (f"stopped by {by} at step {progress.step}; checkpoint saved ({saved_name}). "
                   f"Continue with: {resume_command(cfg)}")
        say(message)
        raise interrupted(message, signum)
    say(f"done: step {progress.step}, epoch {min(progress.epoch, cfg.total_epochs)}; run directory {run.path}")
    return run.path
