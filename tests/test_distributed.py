"""Training on 2 processes with torchrun and the gloo backend (CPU)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_images, tiny_config
from cyclegan import CycleGANNets, TrainConfig, train
from cyclegan.data import PairSampler
from cyclegan.report import read_loss_log
from cyclegan.rundir import latest_checkpoint, load_nets, load_state

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def _torchrun(root: Path, runs: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "cyclegan", "train", str(root), "--name", name, "--checkpoints-dir", str(runs),
            "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
            "--num-workers", "0", "--pool-size", "0", "--n-epochs", "1", "--n-epochs-decay", "1",
            "--print-freq", "1", "--sample-freq", "3", "--save-latest-freq", "2", "--no-progress", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def even_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_images(root / "trainA", 8, seed=1)
    make_images(root / "trainB", 8, seed=2)
    return root


def _outputs(run_dir: Path, x: torch.Tensor) -> dict[str, torch.Tensor]:
    nets = CycleGANNets.build(TrainConfig.load(run_dir / "config.json").model)
    load_nets(latest_checkpoint(run_dir), nets.by_name())
    with torch.no_grad():
        return {name: net.eval()(x) for name, net in nets.by_name().items()}


def test_sampler_splits_each_epoch_between_processes():
    whole = PairSampler(10, 7, seed=3, batch_size=2)
    ranks = [PairSampler(10, 7, seed=3, rank=r, world_size=2, batch_size=2) for r in (0, 1)]
    for s in (whole, *ranks):
        s.set_epoch(2)
    plan, parts = list(whole), [list(r) for r in ranks]
    assert ranks[0].epoch_length == 8 and len(parts[0]) == len(parts[1]) == len(ranks[0]) == 4
    assert parts[0] == plan[0:2] + plan[4:6] and parts[1] == plan[2:4] + plan[6:8]
    for r in ranks:  # resuming mid-epoch at a global position
        r.set_epoch(2, start=4)
    assert list(ranks[0]) == plan[4:6] and list(ranks[1]) == plan[6:8]
    with pytest.raises(ValueError, match="fewer processes"):
        PairSampler(3, 3, seed=0, world_size=2, batch_size=2)


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_global_batch(even_root, tmp_path):
    runs = tmp_path / "runs"
    done = _torchrun(even_root, runs, "ddp", "--max-steps", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("training ") == 1  # rank 0 alone prints and writes
    log = read_loss_log(runs / "ddp" / "loss_log.csv")
    assert list(log["step"]) == [1, 2, 3]

    # The same 3 steps on one process with batch 2: each step sees the same two samples.
    cfg = tiny_config(even_root, runs, name="single", max_steps=3, print_freq=1, sample_freq=3, save_latest_freq=2)
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, pool_size=0, batch_size=2))
    train(cfg)
    # Compare what the networks compute: biases in front of instance norm get ~0 gradients, which
    # Adam turns into updates of either sign, so raw weights may differ where outputs cannot.
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ddp, single = _outputs(runs / "ddp", x), _outputs(runs / "single", x)
    for net in ddp:
        assert torch.allclose(ddp[net], single[net], atol=1e-4), net
    single_log = read_loss_log(runs / "single" / "loss_log.csv")
    assert abs(single_log["cycle_a"][-1] - log["cycle_a"][-1]) < 1e-3  # logged losses: mean over processes


@pytest.mark.slow
def test_distributed_resume_continues_exactly(even_root, tmp_path):
    runs = tmp_path / "runs"
    assert _torchrun(even_root, runs, "straight", "--max-steps", "5").returncode == 0
    first = _torchrun(even_root, runs, "resumed", "--max-steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(load_state(latest_checkpoint(runs / "resumed"))["ranks"]) == 2  # every process's pools and RNG
    second = _torchrun(even_root, runs, "resumed", "--max-steps", "5")
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = latest_checkpoint(runs / "straight"), latest_checkpoint(runs / "resumed")
    for net in ("gen_ab", "disc_b"):
        x, y = load_file(str(a / f"{net}.safetensors")), load_file(str(b / f"{net}.safetensors"))
        assert all(torch.equal(x[k], y[k]) for k in x), net
