"""The built-in demo: a small horse2zebra subset shipped in the package, and the
preset that trains it visibly within minutes on a laptop CPU."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig


def demo_root() -> Path:
    """Folder with trainA/trainB/testA/testB of the demo set (see its README.md)."""
    return Path(str(resources.files("cyclegan") / "data" / "demo" / "horse2zebra"))


def demo_config() -> TrainConfig:
    """Paper defaults scaled down: 6-block ResNet (the paper's choice below 256 px),
    half the filters, 64 px crops, and a 3 + 3 epoch schedule (1800 steps)."""
    return TrainConfig(
        model=ModelConfig(generator="resnet_6blocks", ngf=32, ndf=32),
        data=DataConfig(load_size=72, crop_size=64, num_workers=0),
        optim=OptimConfig(n_epochs=3, n_epochs_decay=3),
        run=RunConfig(name="demo", print_freq=50, sample_freq=200, save_latest_freq=1000, save_epoch_freq=3),
    )
