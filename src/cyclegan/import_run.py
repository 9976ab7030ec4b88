"""`cyclegan import`: a training run of the authors' code turned into a run directory of ours.

    cyclegan import their/checkpoints/horse2zebra --name h2z --checkpoints-dir checkpoints

Their run directory holds `{E}_net_{G_A,G_B,D_A,D_B}.pth` (and `latest_net_*.pth`) and
`train_opt.txt`. The options are mapped onto our config (authors.config_from_authors:
every option mapped or listed as ignored, both lists kept in RUN_DIR/imported_from.json),
the four networks land in our names (their G_A -> gen_ab, G_B -> gen_ba, D_A -> disc_b,
D_B -> disc_a: their D_A judges domain B), and the checkpoint is written with the
project's own checkpoint writer. Their files hold no optimiser, pool or RNG state, so the
checkpoint is marked a warm start; `cyclegan train --resume` says so when it starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

from .atomic import write_text_atomic
from .authors import NET_MAP, config_from_authors, load_into, load_state_dict, parse_opt_file
from .config import ConfigError
from .models import CycleGANNets
from .rundir import RunDir
from .rundir import RunDirError as CheckpointError

WARM_START_KEY = "warm_start"


def find_weights(src: Path) -> dict[str, dict[str, Path]]:
    """{epoch label ('5', 'latest'): {their net name: file}} for the complete sets in `src`."""
    found: dict[str, dict[str, Path]] = {}
    for path in src.iterdir():
        m = re.fullmatch(r"(\d+|latest)_net_(G_A|G_B|D_A|D_B)\.pth", path.name)
        if m:
            found.setdefault(m.group(1), {})[m.group(2)] = path
    return {label: nets for label, nets in found.items() if len(nets) == 4}


def choose_epoch(sets: dict[str, dict[str, Path]], src: Path, epoch: str | None) -> tuple[str, int]:
    """(file label, epoch number the run has finished) for `epoch` (None: the highest numbered one)."""
    numbered = sorted(int(label) for label in sets if label != "latest")
    if not sets:
        raise CheckpointError(f"{src} holds no complete set of *_net_G_A/G_B/D_A/D_B.pth files of the authors' "
                              "cycle_gan model; pass the folder their train.py wrote (checkpoints/NAME)")
    if epoch is None:
        epoch = str(numbered[-1]) if numbered else "latest"
    if epoch not in sets:
        raise ConfigError(f"--epoch {epoch}: {src} has complete sets for {', '.join(sorted(sets))}")
    # Their `latest` is saved alongside the newest numbered epoch; the number says where the schedule is.
    number = int(epoch) if epoch != "latest" else (numbered[-1] if numbered else 0)
    return epoch, number


def import_authors_run(
    src: str | Path, name: str, checkpoints_dir: str | Path, epoch: str | None = None, dataroot: str | None = None,
) -> tuple[Path, list[str]]:
    """Write CHECKPOINTS_DIR/NAME from the authors' run directory `src`; returns (run dir, notes)."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a directory; pass the authors' run folder (checkpoints/NAME)")
    opt_file = src / "train_opt.txt"
    if not opt_file.is_file():
        raise CheckpointError(f"{src} has no train_opt.txt; it is needed to know how the networks were built")
    cfg, mapped, ignored = config_from_authors(parse_opt_file(opt_file))
    if cfg.model.method != "cyclegan":
        raise ConfigError(f"{opt_file}: model {cfg.model.method}; only the authors' cycle_gan runs can be imported")
    data = cfg.data if dataroot is None else dataclasses.replace(cfg.data, dataroot=str(dataroot))
    cfg = dataclasses.replace(cfg, data=data,
                              run=dataclasses.replace(cfg.run, name=name, checkpoints_dir=str(checkpoints_dir)))
    cfg.validate()
    run_dir = cfg.run_dir()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise CheckpointError(f"{run_dir} already exists and is not empty; choose another --name (nothing was written)")
    label, number = choose_epoch(find_weights(src), src, epoch)
    files = find_weights(src)[label]

    nets = CycleGANNets.build(cfg.model, image_size=cfg.data.crop_size)
    ours = nets.by_name()
    notes = []
    for theirs, path in sorted(files.items()):
        dropped = load_into(ours[NET_MAP[theirs]], load_state_dict(path), str(path))
        if dropped:
            notes.append(f"{path.name}: dropped {dropped} instance-norm running-statistics entries (unused)")
    notes.append(f"their G_A -> gen_ab, G_B -> gen_ba, D_A (judges domain B) -> disc_b, D_B -> disc_a; "
                 f"files {label}_net_*.pth, epoch {number} finished")

    run_dir.mkdir(parents=True, exist_ok=True)
    RunDir(run_dir).write_config(cfg)
    record = {"source": str(src.resolve()), "files": {k: v.name for k, v in sorted(files.items())},
              "epoch": number, "mapped": mapped, "ignored": ignored}
    write_text_atomic(run_dir / "imported_from.json", json.dumps(record, indent=2) + "\n")
    state = {
        "progress": {"epoch": number + 1, "position": 0, "step": 0},
        WARM_START_KEY: {"source": str(src.resolve()), "epoch": number},
    }
    RunDir(run_dir).save_checkpoint(ours, state, f"epoch_{number:04d}")
    notes.append(f"{len(mapped)} options mapped, {len(ignored)} ignored (listed in {run_dir / 'imported_from.json'})")
    return run_dir, notes


def warm_start_message(state: dict, run_dir: Path) -> str:
    """What `cyclegan train --resume` prints when it continues an imported run."""
    info = state[WARM_START_KEY]
    return (f"warm start: {run_dir} was imported from the authors' code ({info['source']}, epoch {info['epoch']}); "
            "their files hold no optimiser, image pool or RNG state, so Adam's moments and the pools start "
            f"empty and training continues at epoch {info['epoch'] + 1}")


def cmd_import(args: argparse.Namespace) -> int:
    run_dir, notes = import_authors_run(args.source, args.name, args.checkpoints_dir, args.epoch, args.dataroot)
    for note in notes:
        print(note)
    print(f"imported into {run_dir}; continue training with: cyclegan train --resume --name {args.name} "
          f"--checkpoints-dir {args.checkpoints_dir}")
    return 0
