"""What a run may change when it continues, and whether its dataset is still the one it started on."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..config import TrainConfig, config_diff
from ..rundir import RunDirError

# Fields that only change how a run is watched, where it runs or where it lives, never what it computes.
FREE_TO_CHANGE = {
    "run.name", "run.checkpoints_dir",
    "run.max_steps", "run.device", "run.print_freq", "run.sample_freq", "run.save_latest_freq",
    "run.save_epoch_freq", "run.progress", "run.report_freq", "run.tensorboard",
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


def absolute_dataroot(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its dataroot absolute (kept in config.json), so evaluate or resume from any folder
    finds the same data. The demo (no dataroot) stays None."""
    if cfg.data.dataroot is None or os.path.isabs(cfg.data.dataroot):
        return cfg
    root = str(Path(cfg.data.dataroot).absolute())
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataroot=os.path.normpath(root)))


def check_resume_config(saved: TrainConfig, new: TrainConfig, override: bool) -> None:
    """Refuse a resume whose config changes what the run computes, listing every difference."""
    saved = absolute_dataroot(saved)  # runs written before dataroots were kept absolute
    diffs = [d for d in config_diff(saved, new) if d[0] not in FREE_TO_CHANGE]
    refused = [d for d in diffs if not (override and d[0] in CHANGEABLE_WITH_OVERRIDE)]
    if refused:
        listed = "; ".join(f"{name}: {old!r} -> {new!r}" for name, old, new in refused)
        hint = (
            " (--override-config allows changing " + ", ".join(sorted(CHANGEABLE_WITH_OVERRIDE)) + ")"
            if any(d[0] in CHANGEABLE_WITH_OVERRIDE for d in refused)
            else "; start a new run with another --name instead"
        )
        raise RunDirError(f"cannot resume with a different config: {listed}{hint}")


def dataset_changes(saved: dict[str, list[str]], now: dict[str, list[str]]) -> list[str]:
    """What differs between two file lists per folder, in words ("trainA: 2 added (x.png, ...)")."""

    def some(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    changes = []
    for folder in sorted(set(saved) | set(now)):
        before, after = saved.get(folder, []), now.get(folder, [])
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        parts = [f"{len(added)} added ({some(added)})" if added else "",
                 f"{len(removed)} removed ({some(removed)})" if removed else ""]
        if any(parts):
            changes.append(f"{folder}: " + " and ".join(p for p in parts if p))
        elif before != after:
            changes.append(f"{folder}: the same files in another order")
    return changes
