"""The run directory: its layout, and every read and write of it. No other module spells its file names.

    RUN_DIR/config.json                        the TrainConfig the run computes with
    RUN_DIR/dataset.json                       where the data is (absolute, and as typed) and its file lists
    RUN_DIR/loss_log.csv                       loss terms averaged over each logging window
    RUN_DIR/samples/step_00001234.png          sample grids
    RUN_DIR/report.html                        the one-page summary
    RUN_DIR/eval/metrics.json, eval/<...>/     evaluation outputs
    RUN_DIR/tensorboard/                       optional TensorBoard events
    RUN_DIR/lock                               held (flock) by the one training process writing the run
    RUN_DIR/checkpoints/LATEST                 name of the newest complete checkpoint
    RUN_DIR/checkpoints/step_00001234/         <net>.safetensors for each network + state.pt
    RUN_DIR/checkpoints/epoch_0005/            kept epoch snapshot (weights only once superseded)
    RUN_DIR/eval_log.csv, checkpoints/best/    scores while training (--eval-freq), the best weights so far

A checkpoint is assembled in a temporary folder, fsynced and renamed into place; only then
is LATEST switched (atomic rename) and older ones pruned. Weights are safetensors; the
training state is loaded with weights_only=True, so a planted pickle cannot run code.
Every failed write (a full disk included) is one RunDirError naming the file.

This module sits on the ground floor: it imports only the config and the standard tools.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_file, fsync_dir, fsync_file
from .config import SECTIONS, ConfigError, TrainConfig

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.json"
LOSS_LOG_FILE = "loss_log.csv"
SAMPLES_DIR = "samples"
REPORT_FILE = "report.html"
EVAL_DIR = "eval"
METRICS_FILE = "metrics.json"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = "lock"
EVAL_LOG_FILE = "eval_log.csv"  # scores measured while training (--eval-freq)
BEST_DIR = "best"  # checkpoints/best: the weights with the best mean KID so far
BEST_FILE = "best.json"  # beside them: the step and the scores
CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "LATEST"
STATE_FILE = "state.pt"
WEIGHTS_SUFFIX = ".safetensors"
FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"

Notify = Callable[[str], None]


class RunDirError(RuntimeError):
    """A run directory or checkpoint is missing, damaged, in use, from another configuration, or
    cannot be written (a full disk)."""


# The name the rest of the code base has always used for these errors.
CheckpointError = RunDirError


class DiskFullError(RunDirError):
    """A write failed because the disk (or quota) is full."""


def _is_disk_full(err: BaseException, where: Path) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(err):  # safetensors and torch.save report it in their text
        return True
    try:  # torch.save's stream writer says only "file write failed"
        return shutil.disk_usage(where).free < 1 << 20
    except OSError:
        return False


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


@contextmanager
def writing(path: Path, what: str | None = None) -> Iterator[None]:
    """Turn a failed write of `path` into one RunDirError line (DiskFullError when the disk is full)."""
    try:
        yield
    except (OSError, SafetensorError, RuntimeError) as err:
        if isinstance(err, RunDirError):
            raise
        label = what or str(path)
        folder = path if path.is_dir() else path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if _is_disk_full(err, folder):
            raise DiskFullError(f"the disk is full: could not write {label}; free some space and run the same "
                                "command again") from None
        raise RunDirError(f"could not write {label}: {_reason(err)}") from None


def write_text(path: Path, text: str) -> None:
    """Atomic text write: the old content or the new, never a mix; one line when it fails."""
    with writing(path):
        with atomic_file(path, "w") as f:
            f.write(text)


def weights_file(folder: Path, net_name: str) -> Path:
    return Path(folder) / f"{net_name}{WEIGHTS_SUFFIX}"


def _state_dict_for_file(net: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; copies are cheap next to disk I/O.
    return {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}


def save_weights(net: nn.Module, path: Path) -> None:
    save_file(_state_dict_for_file(net), str(path))


def load_weights(net: nn.Module, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise RunDirError(f"cannot read weights {path}: {err}") from None
    check_tensors(tensors, net.state_dict(), path)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise RunDirError(
            f"weights {path} do not fit this network ({detail}); was it trained with another "
            "--generator/--ngf/--norm/--input-nc? Use the config.json saved beside it"
        ) from None


def check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights whose dtype differs from the network's (e.g. int64 where float32 belongs;
    load_state_dict would convert silently) or that hold NaN/inf (black or garbage images)."""
    for name, tensor in tensors.items():
        want = expected.get(name)
        if want is not None and tensor.dtype != want.dtype:
            raise RunDirError(f"weights {path}: {name} is {tensor.dtype}, expected {want.dtype}; "
                              "the file is damaged or not a cyclegan generator")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise RunDirError(f"weights {path}: {name} holds {bad} non-finite values (NaN or inf); "
                              "the file is damaged or from a run that diverged; use an earlier checkpoint")


def find_config(weights: Path) -> Path:
    """The config.json of the run a weights file belongs to (beside it, or RUN_DIR/checkpoints/NAME/)."""
    for candidate in (weights.parent / CONFIG_FILE, weights.parent.parent.parent / CONFIG_FILE):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no {CONFIG_FILE} found for {weights}; pass --config RUN_DIR/{CONFIG_FILE}")


def _step_of(name: str) -> int | None:
    if name.startswith("step_") and name[5:].isdigit():
        return int(name[5:])
    return None


class RunDir:
    """One run directory. Paths are properties; reads and writes are methods."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def of(cls, cfg: TrainConfig) -> "RunDir":
        return cls(cfg.run_dir())

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ---------------------------------------------------------------- layout

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def dataset_file(self) -> Path:
        return self.path / DATASET_FILE

    @property
    def loss_log(self) -> Path:
        return self.path / LOSS_LOG_FILE

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES_DIR

    def sample_file(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:08d}.png"

    def sample_files(self) -> list[tuple[int, Path]]:
        """(step, path) of the sample grids, oldest first."""
        if not self.samples_dir.is_dir():
            return []
        found = []
        for entry in os.scandir(self.samples_dir):
            step = _step_of(entry.name[:-4]) if entry.name.endswith(".png") else None
            if step is not None and entry.is_file():
                found.append((step, Path(entry.path)))
        return sorted(found)

    @property
    def report_file(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def eval_dir(self) -> Path:
        return self.path / EVAL_DIR

    @property
    def metrics_file(self) -> Path:
        return self.eval_dir / METRICS_FILE

    @property
    def eval_log(self) -> Path:
        return self.path / EVAL_LOG_FILE

    @property
    def best_dir(self) -> Path:
        return self.checkpoints_dir / BEST_DIR

    @property
    def best_file(self) -> Path:
        return self.best_dir / BEST_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def is_run(self) -> bool:
        return self.config_file.is_file() or self.loss_log.is_file()

    def require(self) -> "RunDir":
        """Raise RunDirError unless this looks like a run directory."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path} is not a run directory: it does not exist (check the path)")
        if not self.is_run():
            raise RunDirError(f"{self.path} is not a run directory: no {CONFIG_FILE} or {LOSS_LOG_FILE} in it")
        return self

    # ---------------------------------------------------------------- config and dataset record

    def read_config(self) -> TrainConfig:
        if not self.config_file.is_file():
            raise RunDirError(f"{self.path} is not a run directory (no {CONFIG_FILE}); pass the folder that "
                              "`cyclegan train` wrote")
        try:
            raw = json.loads(self.config_file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read config {self.config_file}: {_reason(err)}") from None
        missing = [s for s in SECTIONS if not isinstance(raw, dict) or s not in raw]
        if missing:
            raise ConfigError(f"{self.config_file}: field {missing[0]} is missing; this file was not written by "
                              "`cyclegan train` (or was damaged)")
        return TrainConfig.load(self.config_file)

    def write_config(self, cfg: TrainConfig) -> None:
        write_text(self.config_file, json.dumps(cfg.to_dict(), indent=2) + "\n")

    def read_dataset(self) -> dict | None:
        """The dataset record written at the run's start (None for runs older than it)."""
        try:
            raw = json.loads(self.dataset_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as err:
            raise RunDirError(f"cannot read {self.dataset_file}: {_reason(err)}; delete it to skip the "
                              "dataset check") from None
        files = raw.get("files") if isinstance(raw, dict) else None
        if not isinstance(files, dict) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in files.values()
        ):
            raise RunDirError(f"{self.dataset_file}: field files must map folders to lists of file names; "
                              "delete the file to skip the dataset check")
        return raw

    def write_dataset(self, record: dict) -> None:
        write_text(self.dataset_file, json.dumps(record, indent=1) + "\n")

    # ---------------------------------------------------------------- logs and samples

    def save_sample(self, image, step: int) -> Path:
        """Write a sample grid (a PIL image) atomically."""
        path = self.sample_file(step)
        with writing(path):
            with atomic_file(path, "wb") as f:
                image.save(f, format="PNG")
        return path

    def write_metrics(self, results: dict, path: Path | None = None) -> Path:
        target = Path(path) if path is not None else self.metrics_file
        write_text(target, json.dumps(results, indent=2) + "\n")
        return target

    # ---------------------------------------------------------------- checkpoints

    def _complete(self, folder: Path) -> bool:
        return (folder.is_dir() and not folder.name.startswith(_TMP_PREFIX) and (folder / STATE_FILE).is_file()
                and any(p.name.endswith(WEIGHTS_SUFFIX) for p in folder.iterdir()))

    def _newest_complete(self) -> tuple[Path | None, list[str]]:
        """The complete checkpoint with the highest step, read from each state.pt; and the unreadable ones."""
        best, best_step, bad = None, -1, []
        if not self.checkpoints_dir.is_dir():
            return None, bad
        for folder in sorted(self.checkpoints_dir.iterdir()):
            if not self._complete(folder):
                continue
            try:
                step = int(load_state(folder)["progress"]["step"])
            except (RunDirError, KeyError, TypeError, ValueError):
                bad.append(folder.name)
                continue
            if step > best_step:
                best, best_step = folder, step
        return best, bad

    def latest_checkpoint(self, notify: Notify | None = None) -> Path | None:
        """The checkpoint LATEST names; when LATEST is missing, empty or dangling, the newest complete
        checkpoint (said through `notify`); None when there is none."""
        pointer = self.checkpoints_dir / LATEST_FILE
        try:
            name = pointer.read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            name, problem = "", "is missing"
        except OSError as err:
            name, problem = "", f"cannot be read ({_reason(err)})"
        else:
            problem = "is empty" if not name else f"names {name}, which is not a complete checkpoint"
        if name and "/" not in name and self._complete(self.checkpoints_dir / name):
            return self.checkpoints_dir / name
        found, _ = self._newest_complete()
        if found is not None and notify is not None:
            notify(f"{pointer} {problem}; using the newest complete checkpoint, {found.name}")
        return found

    def clean_temporary(self) -> None:
        """Remove checkpoint folders a killed or disk-full save left half written."""
        if self.checkpoints_dir.is_dir():
            for folder in self.checkpoints_dir.glob(_TMP_PREFIX + "*"):
                shutil.rmtree(folder, ignore_errors=True)

    def save_checkpoint(self, nets: dict[str, nn.Module], state: dict, name: str) -> Path:
        """Write weights + state as checkpoints/NAME, make it LATEST, prune superseded ones."""
        root = self.checkpoints_dir
        final = root / name
        if self.latest_checkpoint() == final:
            return final  # same name, same step: already on disk and complete
        tmp = root / f"{_TMP_PREFIX}{name}"
        try:
            with writing(tmp, f"checkpoint {final}"):
                root.mkdir(parents=True, exist_ok=True)
                if tmp.exists():
                    shutil.rmtree(tmp)
                tmp.mkdir()
                for net_name, net in nets.items():
                    save_weights(net, weights_file(tmp, net_name))
                torch.save({"format_version": FORMAT_VERSION, **state}, tmp / STATE_FILE)
                for f in tmp.iterdir():
                    fsync_file(f)
                fsync_dir(tmp)
                if final.exists():  # not what LATEST points to (e.g. left by a crash before LATEST moved)
                    shutil.rmtree(final)
                os.replace(tmp, final)
                fsync_dir(root)
                with atomic_file(root / LATEST_FILE, "w") as f:
                    f.write(name + "\n")
        except RunDirError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            previous = self.latest_checkpoint()
            kept = (f"the previous checkpoint {previous.name} is still the latest" if previous
                    else "no earlier checkpoint exists")
            raise type(err)(f"{str(err).split('; free some space')[0]}; {kept}") from None
        self._prune(keep=final, kept_step=int(state["progress"]["step"]))
        return final

    def _prune(self, keep: Path, kept_step: int) -> None:
        """Drop step checkpoints older than `keep` (never a newer one); epoch snapshots keep their weights only."""
        for path in self.checkpoints_dir.iterdir():
            if not path.is_dir() or path == keep or path.name.startswith(_TMP_PREFIX):
                continue
            step = _step_of(path.name)
            if step is not None and step < kept_step:
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith("epoch_"):
                (path / STATE_FILE).unlink(missing_ok=True)

    def load_nets(self, checkpoint: Path, nets: dict[str, nn.Module]) -> None:
        load_nets(checkpoint, nets)

    def load_state(self, checkpoint: Path) -> dict:
        return load_state(checkpoint)

    @staticmethod
    def state_file(checkpoint: Path) -> Path:
        return Path(checkpoint) / STATE_FILE

    # ---------------------------------------------------------------- the lock

    @contextmanager
    def lock(self, notify: Notify | None = None) -> Iterator[None]:
        """Hold RUN_DIR/lock for the block: one writer per run directory.

        flock releases the lock when its holder dies however it dies, so a lock file left by a
        dead process is taken over (with a message); its text names the holder for the error.
        """
        created = not self.path.exists()
        with writing(self.lock_file):
            self.path.mkdir(parents=True, exist_ok=True)
        fd = self._acquire(notify)
        try:
            yield
        finally:
            try:
                self.lock_file.unlink(missing_ok=True)
            finally:
                os.close(fd)
            if created:
                try:
                    self.path.rmdir()  # only when empty: a run that failed before writing anything
                except OSError:
                    pass

    def _acquire(self, notify: Notify | None) -> int:
        while True:
            with writing(self.lock_file):
                fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunDirError(
                    f"{self.path} is in use by another training run ({holder}); wait for it to finish or stop it, "
                    "or train under another --name"
                ) from None
            # The holder may have removed the file between our open and our flock: lock the file
            # that is there now, not an unlinked one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_file).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = _read_holder(fd, default="")
            if previous and notify is not None:
                notify(f"{self.lock_file} was left by {previous}, which is no longer running; taking it over")
            text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}) + "\n"
            try:
                with writing(self.lock_file):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, text.encode(), 0)
                    os.fsync(fd)
            except RunDirError:
                os.close(fd)
                raise
            return fd


def _read_holder(fd: int, default: str = "a process that left no details") -> str:
    try:
        raw = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"PID {int(raw['pid'])} on {raw['host']} since {raw['since']}"
    except (OSError, ValueError, TypeError, KeyError):
        return default


def load_state(checkpoint: Path) -> dict:
    """The raw training state of a checkpoint (refusing pickled code and foreign files)."""
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise RunDirError(f"{checkpoint} holds weights only (no {STATE_FILE}); it cannot be resumed from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunDirError(f"refusing to load {path}: {reason}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise RunDirError(f"{path}: field format_version is missing or not {FORMAT_VERSION}; it is not a training "
                          "state written by this version of cyclegan")
    return state


def load_nets(checkpoint: Path, nets: dict[str, nn.Module]) -> None:
    for name, net in nets.items():
        path = weights_file(checkpoint, name)
        if not path.is_file():
            raise RunDirError(f"checkpoint {checkpoint} has no {path.name}")
        load_weights(net, path)


class LossLog:
    """RUN_DIR/loss_log.csv: one row of loss terms averaged over each logging window."""

    def __init__(self, run: RunDir, loss_names: tuple[str, ...], resume_step: int, print_freq: int = 1):
        self.path = run.loss_log
        self.columns = ["step", "epoch", "lr", "sec_per_step", *loss_names]
        rows: list[dict] = []
        if self.path.exists() and resume_step > 0:
            # Rows logged after the checkpoint we resume from will be logged again, and so will a
            # partial last row (a run that ended between two rows): its window is in the checkpoint.
            def kept(step: int) -> bool:
                return step < resume_step or (step == resume_step and step % print_freq == 0)

            with open(self.path, newline="") as f:
                # a row cut short by a crash has empty trailing fields: drop it
                rows = [r for r in csv.DictReader(f)
                        if r.get(loss_names[-1]) and (r["step"] or "").isdigit() and kept(int(r["step"]))]
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, text.getvalue())

    def append(self, row: dict) -> None:
        with writing(self.path):
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
                f.flush()


def latest_checkpoint(run_dir: str | Path, notify: Notify | None = None) -> Path | None:
    """`RunDir(run_dir).latest_checkpoint(notify)`."""
    return RunDir(run_dir).latest_checkpoint(notify)


# ---------------------------------------------------------------- scores while training (--eval-freq)


def read_eval_rows(path: Path) -> list[dict]:
    """Complete rows of eval_log.csv (a line cut short by a crash is dropped)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if (row.get("step") or "").isdigit() and row.get("direction") in ("AtoB", "BtoA") \
                and row.get("failed") is not None:
            rows.append(row)
    return rows


def read_best(run_dir: str | Path) -> dict | None:
    try:
        return json.loads(RunDir(run_dir).best_file.read_text())
    except (OSError, ValueError):
        return None


def recover_best(run: RunDir) -> None:
    """A crash between the two renames of `save_best` leaves the old best as .old-best: put it back."""
    root = run.checkpoints_dir
    old, best = root / ".old-best", run.best_dir
    if old.is_dir() and not best.exists():
        os.replace(old, best)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(root / f"{_TMP_PREFIX}best", ignore_errors=True)


def save_best(run_dir: str | Path, nets, record: dict) -> Path:
    """Write checkpoints/best (the four networks' weights + best.json) the way checkpoints are written:
    assembled in a temporary folder, fsynced, then renamed into place. The prune of step
    checkpoints never touches it (its name starts with neither step_ nor epoch_)."""
    run = RunDir(run_dir)
    root = run.checkpoints_dir
    root.mkdir(parents=True, exist_ok=True)
    recover_best(run)
    tmp, best, old = root / f"{_TMP_PREFIX}best", run.best_dir, root / ".old-best"
    tmp.mkdir()
    try:
        for name, net in nets.by_name().items():
            save_weights(net, weights_file(tmp, name))
        (tmp / BEST_FILE).write_text(json.dumps(record, indent=2) + "\n")
        for f in tmp.iterdir():
            fsync_file(f)
        fsync_dir(tmp)
        if best.exists():
            os.replace(best, old)
        os.replace(tmp, best)
        fsync_dir(root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_best(run)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return best
