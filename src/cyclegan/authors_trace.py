"""Replay a training trace of the authors' code with our step, in float64, and measure the differences.

A trace directory (as in ../shared/golden/default) holds `losses.json` (their `train.py`
arguments and, per step, the losses they reported), `inputs.pt` (the tensors their
`set_input` received) and their run directory with the weights at step 0 and after
the last step. The options are mapped as `cyclegan import` maps them
(authors.config_from_authors); our `train_step` then runs on their inputs from their
initial weights. Used by tests/test_authors_golden.py and scripts/compare_with_authors.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .authors import NET_MAP, authors_loss_names, config_from_authors, drop_instance_norm_stats, load_into, \
    load_state_dict, parse_argv
from .config import TrainConfig
from .models import CycleGANNets
from .pool import ImagePool
from .rundir import CheckpointError
from .methods import Optimizers, Pools, train_step


@dataclass
class TraceComparison:
    steps: int
    worst_loss: float = 0.0  # max |ours - theirs| over every loss of every step
    worst_loss_at: str = ""
    worst_weight: float = 0.0  # max |ours - theirs| over every entry of the final state_dicts
    worst_weight_at: str = ""
    per_step: list[dict[str, float]] = field(default_factory=list)

    def within(self, tolerance: float) -> bool:
        return self.worst_loss <= tolerance and self.worst_weight <= tolerance


def trace_run_dir(trace: Path, cfg_name: str) -> Path:
    candidates = [p for p in (trace / "checkpoints").glob("*") if p.is_dir()]
    named = trace / "checkpoints" / cfg_name
    if named.is_dir():
        return named
    if len(candidates) == 1:
        return candidates[0]
    raise CheckpointError(f"{trace}/checkpoints holds no single run directory of the authors' code")


def replay(trace: str | Path) -> TraceComparison:
    trace = Path(trace)
    try:
        record = json.loads((trace / "losses.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read {trace / 'losses.json'}: {err}") from None
    opts = parse_argv(record["options"])
    cfg: TrainConfig = config_from_authors(opts)[0]
    run = trace_run_dir(trace, opts["name"])
    inputs = torch.load(trace / "inputs.pt", map_location="cpu", weights_only=True)
    steps = len(record["losses"])

    nets = CycleGANNets.build(cfg.model, image_size=cfg.data.crop_size).to(torch.float64)
    ours = nets.by_name()
    for theirs, name in NET_MAP.items():
        load_into(ours[name], load_state_dict(run / f"0_net_{theirs}.pth"), f"0_net_{theirs}.pth")
    betas = (cfg.optim.beta1, cfg.optim.beta2)
    optimizers = Optimizers(gen=torch.optim.Adam(nets.generator_parameters(), lr=cfg.optim.lr, betas=betas),
                            disc=torch.optim.Adam(nets.discriminator_parameters(), lr=cfg.optim.lr, betas=betas))
    pools = Pools(ImagePool(cfg.optim.pool_size, seed=1), ImagePool(cfg.optim.pool_size, seed=2))
    names = authors_loss_names(cfg.loss)
    result = TraceComparison(steps)
    for i, theirs_losses in enumerate(record["losses"]):
        real_a = inputs["real_A"][i].to(torch.float64)
        real_b = inputs["real_B"][i].to(torch.float64)
        losses = train_step(nets, optimizers, pools, real_a, real_b, cfg.loss, fuse=False)
        diffs = {}
        for theirs, value in theirs_losses.items():
            ours_name, factor = names[theirs]
            diffs[theirs] = abs(factor * float(losses[ours_name]) - value)
            if diffs[theirs] > result.worst_loss:
                result.worst_loss, result.worst_loss_at = diffs[theirs], f"step {i + 1} {theirs}"
        result.per_step.append(diffs)
    for theirs, name in NET_MAP.items():
        want, _ = drop_instance_norm_stats(ours[name], load_state_dict(run / f"{steps}_net_{theirs}.pth"))
        got = ours[name].state_dict()
        if set(want) != set(got):
            raise CheckpointError(f"{steps}_net_{theirs}.pth has other entries than our {name}")
        for key, value in want.items():
            diff = float((got[key].to(torch.float64) - value.to(torch.float64)).abs().max()) if value.numel() else 0.0
            if diff > result.worst_weight or not result.worst_weight_at:
                result.worst_weight, result.worst_weight_at = max(diff, result.worst_weight), f"{theirs} {key}"
    return result
