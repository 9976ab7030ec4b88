"""cyclegan: faithful, fast CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017) in plain PyTorch.

    import cyclegan
    cfg = cyclegan.TrainConfig(data=cyclegan.DataConfig(dataroot="datasets/horse2zebra"))
    run_dir = cyclegan.train(cfg)
    zebra = cyclegan.Translator.from_run(run_dir)(horse_image)
"""

# First, before any module below imports torch: OpenMP reads its wait policy once, when torch
# loads it (cpu_threads.py says why a short spin keeps a busy machine from stalling training).
from .cpu_threads import set_wait_policy_default

set_wait_policy_default()

from .config import (
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)
from .data.demo import demo_config, demo_root
from .models import CycleGANNets
from .translate import Translator

__version__ = "0.1.0"

__all__ = [
    "ConfigError", "CycleGANNets", "DataConfig", "LossConfig", "ModelConfig", "OptimConfig", "RunConfig",
    "TrainConfig", "Translator", "demo_config", "demo_root", "train", "__version__",
]


def __getattr__(name: str):
    # `cyclegan.train` is loaded on first use: inference (`import cyclegan.translate`, which
    # imports this package first) must not load the training loop, its DataLoader and signals.
    if name == "train":
        from .training.loop import train

        return train
    raise AttributeError(f"module 'cyclegan' has no attribute {name!r}")
