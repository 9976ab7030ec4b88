"""`cyclegan import`: a run directory of the authors' code (../shared/golden, read in place) becomes one of ours
that translates, evaluates, exports and continues training as a warm start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cyclegan.authors import parse_opt_file
from cyclegan.cli import main
from cyclegan.config import TrainConfig
from cyclegan.rundir import latest_checkpoint, load_state
from conftest import needs_inception

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
SRC = GOLDEN / "default" / "checkpoints" / "golden"
pytestmark = pytest.mark.skipif(not SRC.is_dir(), reason="needs ../shared/golden")


def _import(tmp_path, *extra, name="imp"):
    return main(["import", str(SRC), "--name", name, "--checkpoints-dir", str(tmp_path / "ck"), *extra])


def test_import_maps_every_option_and_takes_the_epoch_from_the_file_names(tmp_path, capsys):
    assert _import(tmp_path) == 0
    out = capsys.readouterr().out
    assert "D_A (judges domain B) -> disc_b" in out and "warm" not in out
    run = tmp_path / "ck" / "imp"
    cfg = TrainConfig.load(run / "config.json")
    assert (cfg.model.ngf, cfg.model.ndf, cfg.data.crop_size, cfg.data.load_size) == (8, 8, 32, 36)
    assert (cfg.data.flip, cfg.data.serial_batches, cfg.model.dropout, cfg.data.num_workers) == (False, True, False, 0)
    record = json.loads((run / "imported_from.json").read_text())
    theirs = set(parse_opt_file(SRC / "train_opt.txt"))
    assert set(record["mapped"]) | set(record["ignored"]) == theirs  # every option accounted for
    assert not set(record["mapped"]) & set(record["ignored"])
    assert record["epoch"] == 10 and latest_checkpoint(run).name == "epoch_0010"
    state = load_state(latest_checkpoint(run))
    assert "opt_gen" not in state and state["progress"]["epoch"] == 11


def test_import_never_overwrites_a_run(tmp_path, capsys):
    assert _import(tmp_path) == 0
    before = (tmp_path / "ck" / "imp" / "config.json").read_text()
    assert _import(tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err
    assert (tmp_path / "ck" / "imp" / "config.json").read_text() == before


def test_bad_sources_are_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["import", str(empty), "--name", "x", "--checkpoints-dir", str(tmp_path)]) == 2
    assert "train_opt.txt" in capsys.readouterr().err
    assert _import(tmp_path, "--epoch", "7") == 2
    assert "complete sets for 0, 10" in capsys.readouterr().err


def test_unknown_or_unmappable_options_are_refused(tmp_path):
    from cyclegan.authors import config_from_authors
    from cyclegan.config import ConfigError

    opts = parse_opt_file(SRC / "train_opt.txt")
    with pytest.raises(ConfigError, match="gan_mode wgangp"):
        config_from_authors({**opts, "gan_mode": "wgangp"})
    with pytest.raises(ConfigError, match="option frobnicate is not known"):
        config_from_authors({**opts, "frobnicate": "1"})


@pytest.mark.slow
def test_imported_run_translates_exports_and_continues_as_a_warm_start(tmp_path, capsys):
    from conftest import make_images

    data = tmp_path / "data"
    make_images(data / "trainA", 2, size=(40, 40), seed=1)
    make_images(data / "trainB", 2, size=(40, 40), seed=2)
    assert _import(tmp_path, "--dataroot", str(data)) == 0
    run = tmp_path / "ck" / "imp"
    # translates (both ways, with the cycle view) and exports
    assert main(["translate", str(run), str(GOLDEN / "zoo" / "input"), "--output-dir", str(tmp_path / "t"),
                 "--cycle", "--no-progress"]) == 0
    assert len(list((tmp_path / "t" / "cycle").glob("*.png"))) == 4
    assert main(["export", str(run), "--format", "torchscript", "--output", str(tmp_path / "g.pt")]) == 0
    capsys.readouterr()
    # continues: 2 pairs an epoch, epoch 10 finished -> step 20; two more steps
    gen_before = torch.load(SRC / "10_net_G_A.pth", weights_only=True)["model.1.weight"]
    assert main(["train", "--resume", "--name", "imp", "--checkpoints-dir", str(tmp_path / "ck"),
                 "--max-steps", "22", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warm start" in out and "no optimiser, image pool or RNG state" in out and "epoch 11" in out
    assert "done: step 22" in out
    ckpt = latest_checkpoint(run)
    state = load_state(ckpt)
    assert state["progress"]["step"] == 22 and "opt_gen" in state  # from now on a normal run
    from safetensors.torch import load_file

    after = load_file(str(ckpt / "gen_ab.safetensors"))["model.1.weight"]
    assert not torch.equal(after, gen_before.float())
    # a second resume is an ordinary one
    assert main(["train", "--resume", "--name", "imp", "--checkpoints-dir", str(tmp_path / "ck"),
                 "--max-steps", "23", "--no-progress"]) == 0
    assert "warm start" not in capsys.readouterr().out


@needs_inception
@pytest.mark.slow
def test_imported_run_evaluates(tmp_path, capsys):
    from conftest import make_images

    data = tmp_path / "data"
    for folder, seed in (("testA", 3), ("testB", 4)):
        make_images(data / folder, 2, size=(32, 32), seed=seed)
    assert _import(tmp_path, "--dataroot", str(data)) == 0
    assert main(["evaluate", str(tmp_path / "ck" / "imp"), "--no-progress", "--no-cache", "--fid-method", "fast"]) == 0
    assert (tmp_path / "ck" / "imp" / "eval" / "metrics.json").is_file()
