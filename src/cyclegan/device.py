"""Which device to compute on: the one resolver for training, translation, evaluation and export.

Inference imports this, never the training loop.
"""

from __future__ import annotations

import torch

from .config import ConfigError

CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """The torch.device for `name` ("auto": CUDA, then MPS, then the CPU); ConfigError in one line
    for a name that is no device, or a device this machine does not have."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option} {name!r} is not a device; use {CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option} {name}: CUDA is not available on this machine (this torch "
                              f"{'has no CUDA support' if torch.version.cuda is None else 'finds no GPU'}); "
                              "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{option} {name}: MPS (Apple GPU) is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise ConfigError(f"{option} {name}: {device.type} devices are not supported; use {CHOICES}")
    return device
