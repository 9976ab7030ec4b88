"""Checkpoints in a run directory, written so that a crash never loses the last good one.

Layout:
    RUN_DIR/config.json
    RUN_DIR/checkpoints/LATEST                  name of the newest complete checkpoint
    RUN_DIR/checkpoints/step_00001234/          {gen_ab,gen_ba,disc_a,disc_b}.safetensors + state.pt
    RUN_DIR/checkpoints/epoch_0005/             kept epoch snapshot (weights only once superseded)

A checkpoint is assembled in a temporary folder, fsynced and renamed into
place; only then is LATEST switched (atomic rename) and older ones pruned.
Weights are safetensors; the training state is loaded with weights_only=True,
so a planted pickle cannot run code.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import fsync_dir, fsync_file, write_text_atomic

NET_NAMES = ("gen_ab", "gen_ba", "disc_a", "disc_b")
STATE_FILE = "state.pt"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A run directory or checkpoint is missing, incomplete or from another configuration."""


@dataclass
class Progress:
    """Where training stands: `epoch` (1-based) is the one in progress, `position`
    the number of samples of its plan already consumed, `step` the optimisation steps done."""

    epoch: int = 1
    position: int = 0
    step: int = 0


def checkpoints_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = checkpoints_root(run_dir)
    pointer = root / "LATEST"
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    return path if path.is_dir() else None


def _state_dict_for_file(net: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; copies are cheap next to disk I/O.
    return {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}


def save_weights(net: nn.Module, path: Path) -> None:
    save_file(_state_dict_for_file(net), str(path))


def load_weights(net: nn.Module, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"cannot read weights {path}: {err}") from None
    check_tensors(tensors, net.state_dict(), path)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise CheckpointError(
            f"weights {path} do not fit this network ({detail}); was it trained with another "
            "--generator/--ngf/--norm/--input-nc? Use the config.json saved beside it"
        ) from None


def check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights whose dtype differs from the network's (e.g. int64 where float32 belongs;
    load_state_dict would convert silently) or that hold NaN/inf (black or garbage images)."""
    for name, tensor in tensors.items():
        want = expected.get(name)
        if want is not None and tensor.dtype != want.dtype:
            raise CheckpointError(f"weights {path}: {name} is {tensor.dtype}, expected {want.dtype}; "
                                  "the file is damaged or not a cyclegan generator")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"weights {path}: {name} holds {bad} non-finite values (NaN or inf); "
                                  "the file is damaged or from a run that diverged; use an earlier checkpoint")


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # numpy's state is stored as tensors so weights_only loading accepts it
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), np_state[2], np_state[3], np_state[4]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(run_dir: Path, nets: dict[str, nn.Module], state: dict, name: str) -> Path:
    """Write weights + state as checkpoints/NAME, make it LATEST, prune superseded ones."""
    root = checkpoints_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    if latest_checkpoint(run_dir) == final:
        return final  # same name, same step: already on disk and complete
    tmp = root / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for net_name, net in nets.items():
            save_weights(net, tmp / f"{net_name}.safetensors")
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp / STATE_FILE)
        for f in tmp.iterdir():
            fsync_file(f)
        fsync_dir(tmp)
        if final.exists():  # not what LATEST points to (e.g. left by a crash before LATEST moved)
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(root)
        write_text_atomic(root / "LATEST", name + "\n")
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        previous = latest_checkpoint(run_dir)
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(f"could not write checkpoint {final}: {err.strerror or err}; {kept}") from None
    _prune(root, keep=name)
    return final


def _prune(root: Path, keep: str) -> None:
    """Drop superseded step checkpoints; epoch snapshots keep their weights only."""
    for path in root.iterdir():
        if not path.is_dir() or path.name == keep:
            continue
        if path.name.startswith("step_"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith("epoch_"):
            (path / STATE_FILE).unlink(missing_ok=True)


def load_state(checkpoint: Path) -> dict:
    path = Path(checkpoint) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{checkpoint} holds weights only (no {STATE_FILE}); it cannot be resumed from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: refuse the file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"refusing to load {path}: {reason}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a training state written by this version of cyclegan")
    return state


def load_nets(checkpoint: Path, nets: dict[str, nn.Module]) -> None:
    for name, net in nets.items():
        path = Path(checkpoint) / f"{name}.safetensors"
        if not path.is_file():
            raise CheckpointError(f"checkpoint {checkpoint} has no {path.name}")
        load_weights(net, path)
