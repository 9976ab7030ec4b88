"""Smoke runs: `CYCLEGAN_SMOKE=1` shrinks every command to seconds, for tests of the README.

With the variable set to a positive number N, training stops after at most N steps
(`--max-steps` still wins when smaller), its networks have at most SMOKE_FILTERS filters
in their first layer (`--ngf`/`--ndf`; the architecture is otherwise the configured one, and
the run's config.json records the reduced values, so translate and evaluate use them), and
every folder of images is read as its first SMOKE_IMAGES files (sorted by name): training
sets, folders given to `translate`, `evaluate` and `study`; FID is computed by its "fast"
route. Everything else (image sizes,
file layout, messages) is what the same command does without it, so a command pasted from
the README runs as written, only shorter. Unset, empty or 0: off. `cyclegan.train()`
honours it too.
"""

from __future__ import annotations

import dataclasses
import os

ENV = "CYCLEGAN_SMOKE"
# Enough for FID's covariance, a study's minimum (5) and a sample grid; few enough for seconds.
SMOKE_IMAGES = 6
# The paper's generator at 256 px costs seconds per image on a small CPU; the same architecture
# with 8 filters in its first layer (64 in the paper) runs every layer, at 1/64 of the work.
SMOKE_FILTERS = 8


def smoke_steps() -> int | None:
    """The step cap CYCLEGAN_SMOKE asks for, or None when smoke runs are off."""
    raw = os.environ.get(ENV, "").strip()
    if not raw or raw == "0":
        return None
    try:
        steps = int(raw)
    except ValueError:
        from .config import ConfigError

        raise ConfigError(f"{ENV}={raw!r}: expected a number of training steps (e.g. {ENV}=1), or unset it") from None
    if steps < 0:
        from .config import ConfigError

        raise ConfigError(f"{ENV}={raw!r}: expected a positive number of training steps, or 0 for off")
    return steps or None


def image_cap() -> int | None:
    """How many images of a folder a smoke run reads (None: all)."""
    return SMOKE_IMAGES if smoke_steps() is not None else None


def apply(cfg):
    """`cfg` shrunk for a smoke run: at most N steps, at most SMOKE_FILTERS filters (unchanged when off)."""
    steps = smoke_steps()
    if steps is None:
        return cfg
    max_steps = steps if cfg.run.max_steps is None else min(cfg.run.max_steps, steps)
    model = dataclasses.replace(cfg.model, ngf=min(cfg.model.ngf, SMOKE_FILTERS), ndf=min(cfg.model.ndf, SMOKE_FILTERS))
    return dataclasses.replace(cfg, model=model, run=dataclasses.replace(cfg.run, max_steps=max_steps))


def fid_method(requested: str) -> str:
    """FID's route in a smoke run: "fast" (the same value from the features, in milliseconds),
    since scipy's 2048 x 2048 matrix square root takes tens of seconds on a small CPU."""
    return "fast" if smoke_steps() is not None else requested
