"""A run never loses work: the lock, LATEST recovery, a real full disk, a changed dataset, real
signals, a killed loader worker, moved runs, the resume hint, the loss log across a resume,
damaged files, devices and --amp. Each test uses the real failure (real processes, a real
tmpfs, real signals) and fails on the code before issue 12."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import make_images, tiny_config
from cyclegan import precision
from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.rundir import RunDir, latest_checkpoint, load_state
from cyclegan.training.loop import resume_command, train

TINY_ARGS = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
             "--num-workers", "0", "--no-progress", "--pool-size", "3", "--n-epochs", "1", "--n-epochs-decay", "1"]
LONG_ARGS = [*TINY_ARGS, "--n-epochs", "500", "--n-epochs-decay", "0", "--print-freq", "1",
             "--save-latest-freq", "100000", "--save-epoch-freq", "1000", "--sample-freq", "100000",
             "--report-freq", "0"]
SRC = str(Path(__file__).resolve().parents[1] / "src")
# absolute: the subprocesses run in other folders, and must import this tree's package
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}


def _cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=timeout)


def _start(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cyclegan.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, **kwargs)


def _wait_for_rows(log: Path, rows: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) > rows:
            return
        time.sleep(0.05)
    out, err = proc.communicate(timeout=10) if proc.poll() is not None else ("", "")
    raise AssertionError(f"no {rows} log rows in time: {err}")


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("cyclegan: error: "), stderr
    return lines[0]


def _step(run_dir: Path) -> int:
    return load_state(latest_checkpoint(run_dir))["progress"]["step"]


# ---------------------------------------------------------------- one writer per run directory


@pytest.mark.slow
def test_second_writer_is_refused_naming_the_holder(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    first = _start("train", str(unaligned_root), "--checkpoints-dir", str(runs), *LONG_ARGS)  # default --name
    try:
        _wait_for_rows(runs / "experiment" / "loss_log.csv", 1, first)  # running, before any checkpoint
        assert latest_checkpoint(runs / "experiment") is None
        second = _cli("train", str(unaligned_root), "--checkpoints-dir", str(runs), *TINY_ARGS, "--max-steps", "2")
        assert second.returncode == 2
        line = _one_error_line(second.stderr)
        assert f"in use by another training run (PID {first.pid} on {socket.gethostname()} since" in line
        assert "another --name" in line
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 143
    assert not (runs / "experiment" / "lock").exists()  # released at the end


@pytest.mark.slow
def test_stale_lock_of_a_dead_process_is_taken_over(unaligned_root, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = tmp_path / "runs" / "s"
    run_dir.mkdir(parents=True)
    (run_dir / "lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "yesterday"}))
    done = _cli("train", str(unaligned_root), "--name", "s", "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
                "--max-steps", "2")
    assert done.returncode == 0, done.stderr
    assert f"left by PID {dead.pid}" in done.stdout and "no longer running; taking it over" in done.stdout
    assert _step(run_dir) == 2 and not (run_dir / "lock").exists()


# ---------------------------------------------------------------- LATEST


@pytest.mark.parametrize("damage", ["missing", "empty", "dangling"])
def test_damaged_latest_resumes_from_the_newest_complete_checkpoint(unaligned_root, tmp_path, damage, capsys):
    args = ["train", str(unaligned_root), "--name", "l", "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
            "--save-latest-freq", "2", "--max-steps", "4"]
    assert main(args) == 0
    root = tmp_path / "runs" / "l" / "checkpoints"
    state = root / "step_00000004" / "state.pt"
    written = state.stat().st_mtime_ns
    pointer = root / "LATEST"
    if damage == "missing":
        pointer.unlink()
    else:
        pointer.write_text("" if damage == "empty" else "step_00000099\n")
    capsys.readouterr()
    assert main(args) == 0  # the same command again
    out = capsys.readouterr().out
    assert "using the newest complete checkpoint, step_00000004" in out
    assert "already at step 4 of 4; nothing to do" in out
    assert state.stat().st_mtime_ns == written  # neither retrained nor deleted
    assert main([*args[:-1], "6"]) == 0
    assert _step(tmp_path / "runs" / "l") == 6


# ---------------------------------------------------------------- a real full disk


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount not permitted here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    ballast = disk / "ballast"
    free = shutil.disk_usage(disk).free
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return ballast


@pytest.mark.slow
def test_full_disk_while_saving_a_checkpoint(unaligned_root, small_disk):
    args = ["train", str(unaligned_root), "--name", "f", "--checkpoints-dir", str(small_disk), *TINY_ARGS,
            "--save-latest-freq", "3", "--sample-freq", "1000", "--report-freq", "0"]
    assert _cli(*args, "--max-steps", "3").returncode == 0
    run_dir = small_disk / "f"
    size = sum(p.stat().st_size for p in (run_dir / "checkpoints" / "step_00000003").iterdir())
    grid = (run_dir / "samples" / "step_00000003.png").stat().st_size  # the last step writes one too
    ballast = _fill(small_disk, leave=grid + size // 2)  # room for the grid and log rows, not for a checkpoint
    full = _cli(*args, "--max-steps", "6")
    assert full.returncode == 2
    line = _one_error_line(full.stderr)
    assert "the disk is full: could not write checkpoint" in line
    assert "the previous checkpoint step_00000003 is still the latest" in line
    assert (run_dir / "checkpoints" / "LATEST").read_text().strip() == "step_00000003"
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))  # nothing left to keep the disk full
    ballast.unlink()
    assert _cli(*args, "--max-steps", "6").returncode == 0
    assert _step(run_dir) == 6


@pytest.mark.slow
def test_full_disk_before_anything_is_written(unaligned_root, small_disk):
    _fill(small_disk, leave=0)
    full = _cli("train", str(unaligned_root), "--name", "g", "--checkpoints-dir", str(small_disk), *TINY_ARGS,
                "--max-steps", "2")
    assert full.returncode == 2
    assert "the disk is full: could not write" in _one_error_line(full.stderr)


# ---------------------------------------------------------------- the dataset changed


@pytest.mark.slow
@pytest.mark.parametrize("change", ["added", "removed", "renamed"])
def test_changed_dataset_is_detected_and_can_continue_with_a_new_plan(unaligned_root, tmp_path, change):
    args = ["train", str(unaligned_root), "--name", "d", "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
            "--save-latest-freq", "3"]
    assert _cli(*args, "--max-steps", "3").returncode == 0
    folder = unaligned_root / "trainB"
    if change == "added":
        make_images(tmp_path / "extra", 1, seed=9)[0].rename(folder / "new.png")
    elif change == "removed":
        (folder / "img_006.png").unlink()
        (folder / "img_005.png").unlink()
    else:
        (folder / "img_001.png").rename(folder / "renamed.png")
    again = _cli(*args, "--max-steps", "5")
    assert again.returncode == 2
    line = _one_error_line(again.stderr)
    assert "changed since this run started" in line and "--resume --override-config" in line
    assert {"added": "trainB: 1 added (new.png)", "removed": "trainB: 2 removed (img_005.png, img_006.png)",
            "renamed": "trainB: 1 added (renamed.png) and 1 removed (img_001.png)"}[change] in line
    go_on = _cli("train", "--resume", "--override-config", "--name", "d", "--checkpoints-dir", str(tmp_path / "runs"),
                 "--max-steps", "5")
    assert go_on.returncode == 0, go_on.stderr
    assert "epoch 2 starts with the files there now" in go_on.stdout
    state = load_state(latest_checkpoint(tmp_path / "runs" / "d"))
    assert state["progress"]["step"] == 5 and state["progress"]["epoch"] == 2


# ---------------------------------------------------------------- signals and dead workers


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_exits_non_zero_after_a_checkpoint(unaligned_root, tmp_path, sig, status):
    runs = tmp_path / "runs"
    name = "s;$(touch pwned)" if sig == signal.SIGTERM else "s"
    # its own session, signalled as a group: the way a terminal delivers Ctrl-C and hang-ups,
    # so the loader worker receives the signal too
    proc = _start("train", str(unaligned_root), "--name", name, "--checkpoints-dir", str(runs), *LONG_ARGS,
                  "--num-workers", "1", cwd=tmp_path, start_new_session=True)
    _wait_for_rows(runs / name / "loss_log.csv", 3, proc)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    stopped = [line for line in out.splitlines() if line.startswith("stopped by")]
    assert stopped and f"stopped by {signal.Signals(sig).name}" in stopped[0]
    step = _step(runs / name)
    assert f"at step {step}; checkpoint" in stopped[0] and step >= 3
    hint = stopped[0].split("Continue with: ", 1)[1]
    assert hint == resume_command(dataclasses.replace(
        tiny_config(unaligned_root, runs), run=dataclasses.replace(tiny_config(unaligned_root, runs).run, name=name)))
    # pasted into a shell, the hint passes the name through as one argument and runs nothing
    echoed = subprocess.run(["bash", "-c", "printf '%s\\n' " + hint.split(" ", 1)[1]], cwd=tmp_path,
                            capture_output=True, text=True)
    assert echoed.stdout.splitlines() == ["train", "--resume", "--name", name, "--checkpoints-dir", str(runs)]
    assert not (tmp_path / "pwned").exists()
    resumed = _cli(*shlex.split(hint)[1:], "--max-steps", str(step + 2), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert _step(runs / name) == step + 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_killed_loader_worker_checkpoints_the_last_step(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    proc = _start("train", str(unaligned_root), "--name", "w", "--checkpoints-dir", str(runs), *LONG_ARGS,
                  "--num-workers", "1")
    _wait_for_rows(runs / "w" / "loss_log.csv", 3, proc)
    workers = _children(proc.pid)
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    line = _one_error_line(err)
    assert "a data-loading worker died" in line and "--num-workers" in line
    step = int(line.split("after step ")[1].split(";")[0])
    assert _step(runs / "w") == step >= 3
    assert "cyclegan train --resume --name w" in line


def test_each_way_torch_reports_a_dead_worker_is_recognised():
    # The slow test above kills a real worker, but where the kill lands decides which of these
    # the loader raises; the one seen only in CI (killed mid-handover) is pinned here.
    from cyclegan.training.signals import WORKER_DEATH_ERRORS, is_worker_death

    seen = [ConnectionResetError(104, "Connection reset by peer"),
            RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. "),
            RuntimeError("DataLoader worker (pid(s) 4242) exited unexpectedly")]
    for err in seen:
        assert isinstance(err, WORKER_DEATH_ERRORS) and is_worker_death(err), err
    assert not is_worker_death(RuntimeError("a bug of ours in the step"))


# ---------------------------------------------------------------- where a run lives


@pytest.mark.slow
def test_dataroot_is_kept_absolute_and_the_run_resumes_from_anywhere(unaligned_root, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    first = _cli("train", "data", "--name", "a", "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
                 "--max-steps", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "runs" / "a"
    assert json.loads((run_dir / "config.json").read_text())["data"]["dataroot"] == str(unaligned_root)
    assert json.loads((run_dir / "dataset.json").read_text())["as_typed"] == "data"
    again = _cli("train", "--resume", "--name", "a", "--checkpoints-dir", str(tmp_path / "runs"), "--max-steps", "4",
                 cwd=tmp_path / "elsewhere")
    assert again.returncode == 0, again.stderr
    assert _step(run_dir) == 4


@pytest.mark.parametrize("name", ["..", ".", "a/b", ""])
def test_name_must_be_a_plain_name(unaligned_root, tmp_path, name, capsys):
    assert main(["train", str(unaligned_root), "--name", name, "--checkpoints-dir", str(tmp_path / "runs"),
                 *TINY_ARGS, "--max-steps", "1"]) == 2
    assert "run.name must be a plain folder name" in capsys.readouterr().err
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "runs" / "config.json").exists()


def test_copied_run_directory_resumes_under_its_new_name(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    train(tiny_config(unaligned_root, runs, name="base", max_steps=2))
    shutil.copytree(runs / "base", tmp_path / "moved" / "y")
    assert main(["train", "--resume", "--name", "y", "--checkpoints-dir", str(tmp_path / "moved"),
                 "--max-steps", "4"]) == 0
    saved = json.loads((tmp_path / "moved" / "y" / "config.json").read_text())
    assert saved["run"]["name"] == "y" and saved["run"]["checkpoints_dir"] == str(tmp_path / "moved")
    assert _step(tmp_path / "moved" / "y") == 4 and _step(runs / "base") == 2


# ---------------------------------------------------------------- the loss log across a resume


@pytest.mark.slow
def test_loss_log_of_a_resumed_run_equals_an_unbroken_one(unaligned_root, tmp_path):
    def rows(run_dir):
        with open(run_dir / "loss_log.csv") as f:
            return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in csv.DictReader(f)]

    straight = train(tiny_config(unaligned_root, tmp_path / "a", max_steps=10, print_freq=4))
    cut = tiny_config(unaligned_root, tmp_path / "b", max_steps=6, print_freq=4)
    train(cut)  # stops between two rows (4 and 8), with a partial last row at 6
    resumed = train(dataclasses.replace(cut, run=dataclasses.replace(cut.run, max_steps=10)), resume=True)
    assert [r["step"] for r in rows(straight)] == ["4", "8", "10"]
    assert rows(resumed) == rows(straight)


# ---------------------------------------------------------------- damaged or crafted files


def _tampered(state: dict, change: str) -> dict:
    if change == "negative step":
        state["progress"]["step"] = -5
    elif change == "no optimiser":
        del state["opt_gen"]
    elif change == "pool of another kind":
        state["pool_a"] = {"size": 3, "images": "not a tensor", "generator": torch.zeros(1)}
    elif change == "no progress":
        del state["progress"]
    elif change == "wrong version":
        state["format_version"] = 7
    return state


@pytest.mark.parametrize("change, field", [
    ("negative step", "progress.step"), ("no optimiser", "opt_gen"), ("pool of another kind", "pool_a"),
    ("no progress", "progress"), ("wrong version", "format_version"),
])
def test_crafted_state_gives_one_line_naming_file_and_field(unaligned_root, tmp_path, change, field, capsys):
    args = ["train", str(unaligned_root), "--name", "c", "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS]
    assert main([*args, "--max-steps", "2"]) == 0
    path = latest_checkpoint(tmp_path / "runs" / "c") / "state.pt"
    torch.save(_tampered(torch.load(path, weights_only=True), change), path)
    capsys.readouterr()
    assert main([*args, "--max-steps", "4", "--resume"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and f"field {field}" in line


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("model"), "field model is missing"),
    (lambda c: c["model"].update(ngf=10**12), "model.ngf must be between 1 and 4096"),
    (lambda c: c["data"].update(crop_size="big"), "data.crop_size must be an integer"),
])
def test_crafted_config_gives_one_line_naming_file_and_field(unaligned_root, tmp_path, edit, message, capsys):
    runs = tmp_path / "runs"
    assert main(["train", str(unaligned_root), "--name", "c", "--checkpoints-dir", str(runs), *TINY_ARGS,
                 "--max-steps", "1"]) == 0
    path = runs / "c" / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--resume", "--name", "c", "--checkpoints-dir", str(runs)]) == 2
    assert main(["translate", str(runs / "c"), str(unaligned_root / "testA"), "--output-dir", str(tmp_path / "o")]) == 2
    for line in capsys.readouterr().err.strip().splitlines():
        assert str(path) in line and message in line


# ---------------------------------------------------------------- devices and precision


@pytest.mark.parametrize("device, message", [
    ("bogus", "--device 'bogus' is not a device"),
    pytest.param("cuda", "--device cuda: CUDA is not available on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    ("cuda:x", "is not a device"),
])
def test_unusable_device_is_one_line(unaligned_root, tmp_path, device, message, capsys):
    assert main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
                 "--max-steps", "1", "--device", device]) == 2
    assert message in _one_error_line(capsys.readouterr().err)
    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=1))
    assert main(["translate", str(run_dir), str(unaligned_root / "testA"), "--output-dir", str(tmp_path / "o"),
                 "--device", device]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_generator_that_does_not_fit_the_crop_is_refused_before_training(unaligned_root, tmp_path, capsys):
    assert main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS,
                 "--generator", "unet_256", "--crop-size", "128", "--load-size", "143", "--max-steps", "1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "data.crop_size 128 does not fit --generator unet_256" in line and "multiple of 256" in line


@pytest.mark.skipif(not precision.cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_amp_run_resumes_without_amp(unaligned_root, tmp_path):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=3)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, amp=True, device="cpu"))
    run_dir = train(cfg)
    state = load_state(latest_checkpoint(run_dir))
    assert state["pool_a"]["images"].dtype == torch.float32 and state["pool_b"]["images"].dtype == torch.float32
    train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, amp=False, max_steps=5)), resume=True)
    assert _step(run_dir) == 5


def test_cuda_rng_state_only_for_the_device_in_use(monkeypatch):
    from cyclegan.training import state as state_module

    got, put = [], []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: got.append(device) or torch.zeros(8, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda value, device: put.append((int(value[0]), device)))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("saved every GPU's state"))
    device = torch.device("cuda:1")
    saved = state_module.rng_state(device)
    assert got == [device] and len(saved["cuda"]) == 1
    state_module.set_rng_state(saved, device)
    assert put == [(0, device)]
    # a checkpoint of the old format holds 8 GPUs' states: only the one in use is restored
    put.clear()
    saved["cuda"] = [torch.full((8,), i, dtype=torch.uint8) for i in range(8)]
    state_module.set_rng_state(saved, device)
    assert put == [(1, device)]
    # resumed on a CPU: no CUDA state is touched
    put.clear()
    state_module.set_rng_state(saved, torch.device("cpu"))
    assert put == [] and state_module.rng_state(torch.device("cpu"))["cuda"] == []


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((6, 1), False), ((8, 0), True), ((9, 0), True)])
def test_amp_refused_on_gpus_without_native_bfloat16(monkeypatch, capability, native):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    if native:
        precision.check_amp(torch.device("cuda"))
    else:
        with pytest.raises(ConfigError, match=rf"compute capability {capability[0]}\.{capability[1]}.*drop --amp"):
            precision.check_amp(torch.device("cuda"))


def test_run_dir_paths_come_from_one_place(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.config_file.parent == run.path and run.metrics_file.parent == run.eval_dir
    assert run.sample_file(12).name == "step_00000012.png"
