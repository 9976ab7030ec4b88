import csv
import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cyclegan import precision
from cyclegan.config import ConfigError, TrainConfig
from cyclegan.report import read_loss_log
from cyclegan.rundir import CheckpointError, latest_checkpoint, load_state
from cyclegan.training.loop import train

from conftest import tiny_config


def _weights(run_dir):
    ckpt = latest_checkpoint(run_dir)
    return {name: load_file(str(ckpt / f"{name}.safetensors")) for name in ("gen_ab", "gen_ba", "disc_a", "disc_b")}


def test_run_directory_contents(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=5)
    run_dir = train(cfg)
    assert TrainConfig.load(run_dir / "config.json") == cfg
    ckpt = latest_checkpoint(run_dir)
    assert ckpt.name == "step_00000005"
    state = load_state(ckpt)
    assert state["progress"] == {"epoch": 1, "position": 5, "step": 5}
    rows = list(csv.DictReader(open(run_dir / "loss_log.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 5]
    assert {"gan_ab", "cycle_a", "idt_b", "disc_b", "sec_per_step", "lr"} <= set(rows[0])
    assert (run_dir / "samples" / "step_00000004.png").is_file()
    # only the newest step checkpoint survives
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["LATEST", "step_00000005"]


@pytest.mark.parametrize("dropout", [False, True])
def test_resume_continues_exactly(unaligned_root, tmp_path, dropout):
    # 7 images in B -> 7 steps per epoch; 10 steps cross an epoch boundary and a pool refill.
    # With dropout the global RNG matters too: its state must be restored and nothing else may draw from it.
    # Bitwise equality is a CPU claim: on CUDA, cuDNN's non-deterministic kernels make even two
    # identical runs differ slightly (seen on an H200; docs/benchmarks.md), so this runs on the CPU.
    def config(root, **run):
        cfg = tiny_config(unaligned_root, root, device="cpu", **run)
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=dropout))

    straight = train(config(tmp_path / "a", max_steps=10))
    first = config(tmp_path / "b", max_steps=4)
    train(first)
    resumed = train(dataclasses.replace(first, run=dataclasses.replace(first.run, max_steps=10)), resume=True)
    wa, wb = _weights(straight), _weights(resumed)
    for net in wa:
        for key in wa[net]:
            assert torch.equal(wa[net][key], wb[net][key]), (net, key)
    log_a = [r["cycle_a"] for r in csv.DictReader(open(straight / "loss_log.csv"))]
    log_b = [r["cycle_a"] for r in csv.DictReader(open(resumed / "loss_log.csv"))]
    assert log_a == log_b


def test_epoch_end_checkpoint_and_schedule(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", save_epoch_freq=1)  # 1 + 1 epochs of 7 steps
    run_dir = train(cfg)
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["LATEST", "epoch_0001", "epoch_0002"]
    assert not (run_dir / "checkpoints" / "epoch_0001" / "state.pt").exists()  # superseded: weights only
    rows = list(csv.DictReader(open(run_dir / "loss_log.csv")))
    lrs = {int(r["epoch"]): float(r["lr"]) for r in rows}
    assert lrs[1] == pytest.approx(2e-4) and lrs[2] == pytest.approx(1e-4)  # 1 - 1/(1+1)
    # resuming a finished run does nothing
    assert train(cfg, resume=True) == run_dir


def test_existing_run_with_other_config_needs_resume(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=2)
    train(cfg)
    other = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, lambda_a=1.0))
    with pytest.raises(CheckpointError, match=r"already holds a run .*loss\.lambda_a.*--resume"):
        train(other)


def test_resume_refuses_other_network(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=2)
    train(cfg)
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, ngf=8))
    with pytest.raises(CheckpointError, match=r"model\.ngf: 4 -> 8"):
        train(other, resume=True)
    longer = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, n_epochs=3))
    with pytest.raises(CheckpointError, match="--override-config"):
        train(longer, resume=True)
    train(longer, resume=True, override_config=True)


def test_resume_without_checkpoint_is_a_clear_error(unaligned_root, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tiny_config(unaligned_root, tmp_path / "runs"), resume=True)


def test_malicious_state_is_refused(unaligned_root, tmp_path):
    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=1))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    ckpt = latest_checkpoint(run_dir)
    torch.save({"format_version": 1, "x": Evil()}, ckpt / "state.pt")
    with pytest.raises(CheckpointError, match="refusing"):
        load_state(ckpt)
    assert not marker.exists()


def test_workers_give_the_same_run(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "w0", max_steps=3, device="cpu")  # bitwise: a CPU claim (above)
    with_workers = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=2),
                                       run=dataclasses.replace(cfg.run, checkpoints_dir=str(tmp_path / "w2")))
    a, b = _weights(train(cfg)), _weights(train(with_workers))
    assert all(torch.equal(a["gen_ab"][k], b["gen_ab"][k]) for k in a["gen_ab"])


def test_report_and_tensorboard_during_training(unaligned_root, tmp_path):
    pytest.importorskip("tensorboard", reason="pip install tensorboard")
    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=6, report_freq=2, tensorboard=True))
    page = (run_dir / "report.html").read_text()
    assert "<h2>Losses</h2>" in page and "<h2>Samples</h2>" in page and "data:image" in page
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_amp_refused_where_bfloat16_is_emulated(unaligned_root, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=1)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, amp=True, device="cpu"))
    with pytest.raises(ConfigError, match="--amp .* no bfloat16 instructions .* drop --amp"):
        train(cfg)


@pytest.mark.skipif(not precision.cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_amp_on_a_bfloat16_cpu_trains_close_to_float32(unaligned_root, tmp_path):
    runs = {}
    for amp in (False, True):
        cfg = tiny_config(unaligned_root, tmp_path / "runs", name=f"amp_{amp}", max_steps=4, print_freq=1)
        runs[amp] = train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, amp=amp, device="cpu")))
    logs = {amp: read_loss_log(run / "loss_log.csv") for amp, run in runs.items()}
    for term in ("cycle_a", "cycle_b", "disc_a"):
        exact, fast = logs[False][term], logs[True][term]
        assert np.all(np.isfinite(fast)) and np.allclose(fast, exact, rtol=0.1), term  # same run, bfloat16 noise
        assert not np.array_equal(fast, exact)  # bfloat16 did run
    weights = load_file(str(latest_checkpoint(runs[True]) / "gen_ab.safetensors"))
    assert all(t.dtype == torch.float32 for t in weights.values())  # checkpoints stay float32


def test_compile_wraps_the_step_networks_not_the_checkpointed_ones(unaligned_root, tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module):  # the real one takes minutes on CPU; this checks the wiring
        compiled.append(type(module).__name__)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=2)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, compile=True))
    run_dir = train(cfg)
    assert compiled == ["ResnetGenerator", "ResnetGenerator", "NLayerDiscriminator", "NLayerDiscriminator"]
    keys = load_file(str(latest_checkpoint(run_dir) / "gen_ab.safetensors"))
    assert not any(k.startswith("_orig_mod") for k in keys)
    # compile only changes how the run is executed: the same run resumes without it
    train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, compile=False, max_steps=3)))
