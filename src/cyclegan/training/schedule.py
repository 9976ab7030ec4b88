"""Learning-rate schedules, as a pure function of the (1-based) epoch.

Because the factor is derived from the epoch alone, resuming needs no
scheduler state beyond the epoch counter.
"""

from __future__ import annotations

import math

from ..config import OptimConfig


def lr_factor(epoch: int, cfg: OptimConfig) -> float:
    """Multiplier of the base learning rate during `epoch` (1 = first epoch).

    linear: constant for n_epochs, then linear decay over n_epochs_decay, with the
    authors' formula 1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1), so the
    last epoch runs at 1/(n_epochs_decay + 1) of the base rate and the next would be 0.
    step: x0.1 every lr_decay_iters epochs. cosine: half a cosine over all epochs.
    """
    if cfg.lr_policy == "linear":
        return 1.0 - max(0, epoch - cfg.n_epochs) / float(cfg.n_epochs_decay + 1)
    if cfg.lr_policy == "step":
        return 0.1 ** ((epoch - 1) // cfg.lr_decay_iters)
    if cfg.lr_policy == "cosine":
        total = cfg.n_epochs + cfg.n_epochs_decay
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / total))
    raise ValueError(f"unknown learning-rate policy {cfg.lr_policy!r}")
