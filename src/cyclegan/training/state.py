"""Everything a training run changes as it goes, and its checkpoint keys, defined once.

`TrainingState.build(cfg, device)` makes the networks, optimisers and pools as the paper
sets them up; the loop, the tests and the benchmarks all start from it. `state_dict()` /
`load_state_dict()` are what a checkpoint's state.pt holds (weights go to safetensors files
beside it, through `RunDir.save_checkpoint`):

    progress           {"epoch", "position", "step"}
    opt_gen, opt_disc  the Adam states
    pool_a, pool_b     the image pools           \\
    rng                torch / CUDA / numpy / python  |  one set per process; under torchrun
    log_window         loss sums since the last log   /  they are kept as a list under "ranks"
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..methods import Optimizers, Pools
from ..models import CycleGANNets
from ..pool import ImagePool
from ..rundir import RunDirError


@dataclass
class Progress:
    """Where training stands: `epoch` (1-based) is the one in progress, `position`
    the number of samples of its plan already consumed, `step` the optimisation steps done."""

    epoch: int = 1
    position: int = 0
    step: int = 0


@dataclass
class LogWindow:
    """Loss sums since the last loss-log row; saved with a checkpoint, so the row that spans a
    resume averages the same steps as in a run never interrupted."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0) + value
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.steps for k, v in self.sums.items()}  # the one host sync per row

    def clear(self) -> None:
        self.sums, self.steps = {}, 0


def rng_state(device: torch.device) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        # the device in use only: other visible GPUs are not ours, and may not be there on resume
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        # numpy's state is stored as tensors so weights_only loading accepts it
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), np_state[2], np_state[3], np_state[4]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if cuda and device.type == "cuda":
        # Older checkpoints hold every visible GPU's state: take the one of the device in use.
        index = 0 if len(cuda) == 1 else (device.index if device.index is not None else torch.cuda.current_device())
        if index < len(cuda):
            torch.cuda.set_rng_state(cuda[index], device)
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class TrainingState:
    """Networks, optimisers, pools, progress and the open log window of one training process."""

    def __init__(self, nets: CycleGANNets, optimizers: Optimizers, pools: Pools, device: torch.device,
                 progress: Progress | None = None):
        self.nets = nets
        self.optimizers = optimizers
        self.pools = pools
        self.device = device
        self.progress = progress or Progress()
        self.window = LogWindow()

    @classmethod
    def build(cls, cfg: TrainConfig, device: torch.device | str = "cpu", rank: int = 0,
              dtype: torch.dtype | None = None) -> "TrainingState":
        """The paper's set-up: networks seeded with cfg.run.seed, Adam(lr, betas) for the generators and
        for the discriminators, one history pool per discriminator (each process its own)."""
        device = torch.device(device)
        torch.manual_seed(cfg.run.seed)
        nets = CycleGANNets.build(cfg.model, image_size=cfg.data.crop_size)
        if dtype is not None:
            nets.to(dtype)
        nets.to(device).train()
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        optimizers = Optimizers(
            gen=torch.optim.Adam(nets.generator_parameters(), lr=cfg.optim.lr, betas=betas),
            disc=torch.optim.Adam(nets.discriminator_parameters(), lr=cfg.optim.lr, betas=betas),
        )
        pool_seed = (cfg.run.seed + 7919 * rank) * 2
        pools = Pools(fake_a=ImagePool(cfg.optim.pool_size, seed=pool_seed + 1),
                      fake_b=ImagePool(cfg.optim.pool_size, seed=pool_seed + 2))
        return cls(nets, optimizers, pools, device)

    def set_lr(self, lr: float) -> None:
        for opt in (self.optimizers.gen, self.optimizers.disc):
            for group in opt.param_groups:
                group["lr"] = lr

    # ---------------------------------------------------------------- checkpoint keys

    def process_state(self) -> dict:
        """The part each process holds for itself."""
        return {
            "pool_a": self.pools.fake_a.state_dict(),
            "pool_b": self.pools.fake_b.state_dict(),
            "rng": rng_state(self.device),
            "log_window": {"sums": {k: v.detach().cpu() for k, v in self.window.sums.items()},
                           "steps": self.window.steps},
        }

    def state_dict(self, every_process: list[dict] | None = None) -> dict:
        """The training state; `every_process`: process_state() of each rank (torchrun), gathered."""
        state: dict[str, Any] = {
            "progress": asdict(self.progress),
            "opt_gen": self.optimizers.gen.state_dict(),
            "opt_disc": self.optimizers.disc.state_dict(),
        }
        if every_process is None or len(every_process) == 1:
            state.update(every_process[0] if every_process else self.process_state())
        else:
            state["ranks"] = every_process
        return state

    def load_state_dict(self, state: dict, rank: int = 0, world_size: int = 1, where: str = "the training state") -> None:
        """Restore from a checkpoint's state; RunDirError naming `where` and the field for anything that
        is missing, of the wrong kind or does not fit this run."""

        def bad(field_name: str, problem: str) -> RunDirError:
            return RunDirError(f"{where}: field {field_name} {problem}")

        progress = state.get("progress")
        if not isinstance(progress, dict) or set(progress) != {"epoch", "position", "step"}:
            raise bad("progress", "must hold epoch, position and step")
        for key, low in (("epoch", 1), ("position", 0), ("step", 0)):
            value = progress[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise bad(f"progress.{key}", f"must be an integer >= {low}, got {value!r}")
        if "ranks" in state:
            ranks = state["ranks"]
            if not isinstance(ranks, list):
                raise bad("ranks", "must be a list")
            if len(ranks) != world_size:
                raise RunDirError(f"{where} was written by {len(ranks)} processes; resume it with as many "
                                  f"(torchrun --nproc_per_node ...), not {world_size}")
            mine = ranks[rank]
        else:
            mine = state
        if not isinstance(mine, dict):
            raise bad("ranks", "must hold one dict per process")
        for key, opt in (("opt_gen", self.optimizers.gen), ("opt_disc", self.optimizers.disc)):
            try:
                opt.load_state_dict(state[key])
            except KeyError:
                raise bad(key, "is missing") from None
            except (ValueError, TypeError, RuntimeError, AttributeError, IndexError) as err:
                raise bad(key, f"does not fit this run's optimiser ({_first_line(err)})") from None
        for key, pool in (("pool_a", self.pools.fake_a), ("pool_b", self.pools.fake_b)):
            try:
                pool.load_state_dict(mine[key], self.device)
            except KeyError:
                raise bad(key, "is missing or incomplete") from None
            except (ValueError, TypeError, RuntimeError, AttributeError) as err:
                raise bad(key, f"does not fit this run's image pool ({_first_line(err)})") from None
        try:
            set_rng_state(mine["rng"], self.device)
        except KeyError:
            raise bad("rng", "is missing or incomplete") from None
        except (ValueError, TypeError, RuntimeError, AttributeError, IndexError) as err:
            raise bad("rng", f"is not a random-number state ({_first_line(err)})") from None
        window = mine.get("log_window", {"sums": {}, "steps": 0})  # absent in older checkpoints
        try:
            self.window.sums = {str(k): v.to(self.device) for k, v in window["sums"].items()}
            self.window.steps = int(window["steps"])
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise bad("log_window", f"is damaged ({_first_line(err)})") from None
        self.progress = Progress(**progress)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
