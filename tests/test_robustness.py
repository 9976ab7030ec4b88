"""Crashes, bad files, NaNs, full disks and hostile checkpoints: nothing is lost, nothing runs."""

import dataclasses
import errno
import os
import random
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cyclegan.cli import main
from cyclegan.config import ConfigError, TrainConfig
from cyclegan.data import UnalignedDataset, load_image
from cyclegan.data.images import ImageLoadError
from cyclegan.config import DataConfig
from cyclegan import rundir as checkpoint_module
from cyclegan.rundir import latest_checkpoint, load_state
from cyclegan.training.loop import NonFiniteLossError, train

from conftest import make_images, tiny_config

TINY_ARGS = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
             "--num-workers", "0", "--no-progress", "--pool-size", "3", "--n-epochs", "1", "--n-epochs-decay", "1"]


def _weights(run_dir):
    ckpt = latest_checkpoint(run_dir)
    return {n: load_file(str(ckpt / f"{n}.safetensors")) for n in ("gen_ab", "gen_ba", "disc_a", "disc_b")}


def _same(a, b):
    return all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


# ---------------------------------------------------------------- crash safety


def _latest_step(run_dir) -> int:
    try:
        name = (run_dir / "checkpoints" / "LATEST").read_text().strip()
    except OSError:
        return 0
    return int(name.split("_")[1]) if name.startswith("step_") else -1


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_straight_run(unaligned_root, tmp_path):
    """Kill a run (checkpointing every step) again and again at random points, writes
    included; rerunning the same command must end with exactly the weights of a run
    that was never interrupted."""
    steps = 20
    cmd_for = lambda runs: [sys.executable, "-m", "cyclegan.cli", "train", str(unaligned_root), "--name", "k",
                            "--checkpoints-dir", str(runs), *TINY_ARGS, "--n-epochs", "3", "--max-steps", str(steps),
                            "--save-latest-freq", "1", "--print-freq", "1", "--sample-freq", "7"]
    # One thread: with several, the CPU kernels' reduction order can follow the load on the
    # machine (this test's polling included), which changes the last bits of the weights.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd_for(tmp_path / "straight"), check=True, capture_output=True, env=env)
    run_dir = tmp_path / "killed" / "k"
    rng = random.Random(0)
    kills = 0
    for attempt in range(20):
        proc = subprocess.Popen(cmd_for(tmp_path / "killed"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        target = _latest_step(run_dir) + rng.randint(1, 4)
        while proc.poll() is None and 0 <= _latest_step(run_dir) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.05))  # land anywhere: in a step, in a checkpoint write, in pruning
        if proc.poll() is None and attempt < 8:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        out, err = proc.communicate()
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err.decode()
    assert kills >= 3
    assert load_state(latest_checkpoint(run_dir))["progress"]["step"] == steps
    assert _same(_weights(tmp_path / "straight" / "k"), _weights(run_dir))
    logged = [line.split(",")[0] for line in (run_dir / "loss_log.csv").read_text().splitlines()[1:]]
    assert logged == [str(i) for i in range(1, steps + 1)]  # no step lost or logged twice


def test_crash_inside_checkpoint_write_keeps_the_previous_one(unaligned_root, tmp_path, monkeypatch):
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=3, save_latest_freq=1)
    train(cfg)
    before = latest_checkpoint(cfg.run_dir())
    real_save = checkpoint_module.save_file
    calls = []

    def dies_on_second_file(tensors, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies mid-write
        real_save(tensors, path)

    monkeypatch.setattr(checkpoint_module, "save_file", dies_on_second_file)
    longer = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_steps=5))
    with pytest.raises(KeyboardInterrupt):
        train(longer, resume=True)
    assert latest_checkpoint(cfg.run_dir()) == before
    load_state(before)  # still loadable
    monkeypatch.setattr(checkpoint_module, "save_file", real_save)
    train(longer, resume=True)  # the leftover temporary folder does not get in the way
    assert load_state(latest_checkpoint(cfg.run_dir()))["progress"]["step"] == 5


def test_same_command_again_auto_resumes(unaligned_root, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    args = ["train", str(unaligned_root), "--name", "a", "--checkpoints-dir", runs, *TINY_ARGS]
    assert main([*args, "--max-steps", "2"]) == 0
    assert main([*args, "--max-steps", "4"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert load_state(latest_checkpoint(tmp_path / "runs" / "a"))["progress"]["step"] == 4
    # a different network under the same name is refused, with the difference listed
    assert main([*args, "--max-steps", "6", "--ngf", "8"]) == 2
    err = capsys.readouterr().err
    assert "model.ngf: 4 -> 8" in err and len(err.strip().splitlines()) == 1


def test_non_finite_loss_stops_naming_term_and_step(unaligned_root, tmp_path, monkeypatch):
    from cyclegan.methods import METHODS

    real_step = METHODS["cyclegan"].step
    count = [0]

    def poisoned(*args, **kwargs):
        losses = real_step(*args, **kwargs)
        count[0] += 1
        if count[0] >= 6:
            losses["cycle_b"] = torch.full_like(losses["cycle_b"], float("nan"))  # on the step's device
        return losses

    monkeypatch.setattr(METHODS["cyclegan"], "step", poisoned)
    cfg = tiny_config(unaligned_root, tmp_path / "runs", max_steps=30, save_latest_freq=4, print_freq=100)
    with pytest.raises(NonFiniteLossError, match=r"loss cycle_b became nan at step 6; .*step_00000004 is kept"):
        train(cfg)
    assert latest_checkpoint(cfg.run_dir()).name == "step_00000004"


def test_malicious_checkpoint_refused_at_the_command_line(unaligned_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["train", str(unaligned_root), "--name", "m", "--checkpoints-dir", str(runs), *TINY_ARGS]
    assert main([*args, "--max-steps", "1"]) == 0
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format_version": 1, "evil": Evil()}, latest_checkpoint(runs / "m") / "state.pt")
    assert main([*args, "--max-steps", "2", "--resume"]) == 2
    assert "refusing to load" in capsys.readouterr().err
    assert not marker.exists()


def test_config_json_is_validated_naming_the_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"optim": {"lr": -1}}')
    with pytest.raises(ConfigError, match=r"optim\.lr must be positive"):
        TrainConfig.load(path)
    path.write_text('{"model": {"ngf": "many"}}')
    with pytest.raises(ConfigError, match=r"model\.ngf must be an integer"):
        TrainConfig.load(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read config"):
        TrainConfig.load(path)


# ---------------------------------------------------------------- bad input corpus


def _png_header_only(path, width, height):
    """A valid PNG that claims width x height pixels but holds almost no data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_20000_squared(tmp_path):
    path = _png_header_only(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(ImageLoadError, match=r"huge\.png: too large"):
        load_image(path, 3)


def test_one_pixel_image_is_scaled_up(tmp_path):
    Image.new("RGB", (1, 1), (9, 8, 7)).save(tmp_path / "dot.png")
    root = tmp_path / "d"
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        Image.new("RGB", (1, 1), (9, 8, 7)).save(root / domain / "dot.png")
    ds = UnalignedDataset(root, DataConfig(load_size=36, crop_size=32, preprocess="crop"), 3, 3)
    assert ds[(0, 0, 0)]["a"].shape == (3, 32, 32)


def test_wrong_extension_is_read_by_content(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "really_png.jpg", format="PNG")
    assert load_image(tmp_path / "really_png.jpg", 3).getpixel((0, 0)) == (1, 2, 3)


def test_symlinks_followed_and_broken_ones_named(unaligned_root, tmp_path):
    target = make_images(tmp_path / "elsewhere", 1)[0]
    os.symlink(target, unaligned_root / "trainA" / "link.png")
    ds = UnalignedDataset(unaligned_root, DataConfig(), 3, 3)
    assert ds.len_a == 6
    os.symlink(tmp_path / "missing.png", unaligned_root / "trainA" / "dangling.png")
    with pytest.raises(ImageLoadError, match="dangling.png"):
        UnalignedDataset(unaligned_root, DataConfig(), 3, 3)
    with pytest.warns(UserWarning, match="dangling.png"):
        assert UnalignedDataset(unaligned_root, DataConfig(on_bad_image="skip"), 3, 3).len_a == 6


def test_unreadable_file_is_named(tmp_path, monkeypatch):
    path = make_images(tmp_path, 1)[0]
    if os.geteuid() != 0:  # root reads anything: simulate the refusal instead
        os.chmod(path, 0)
    else:
        real_open = Image.open

        def refuse(fp, *a, **k):
            if str(fp) == str(path):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(fp, *a, **k)

        monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ImageLoadError, match="Permission denied"):
        load_image(path, 3)


def test_domain_with_one_image_trains(tmp_path):
    root = tmp_path / "d"
    make_images(root / "trainA", 1)
    make_images(root / "trainB", 3, seed=5)
    run_dir = train(tiny_config(root, tmp_path / "runs", max_steps=4))
    assert load_state(latest_checkpoint(run_dir))["progress"]["step"] == 4


def test_empty_domain_folder_named_at_the_command_line(tmp_path, capsys):
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    (tmp_path / "d" / "trainA" / "readme.txt").write_text("no images")
    make_images(tmp_path / "d" / "trainB", 2)
    assert main(["train", str(tmp_path / "d"), "--checkpoints-dir", str(tmp_path / "r"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert "trainA holds no images" in err and len(err.splitlines()) == 1


def test_out_of_memory_suggests_what_to_lower(unaligned_root, tmp_path, monkeypatch, capsys):
    import cyclegan.cli as cli

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(cli, "train", oom)
    assert main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "r"), *TINY_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--crop-size" in err and "--batch-size" in err


@pytest.mark.slow
def test_corrupt_file_found_by_a_worker_is_one_line(unaligned_root, tmp_path):
    path = unaligned_root / "trainB" / "img_003.png"
    path.write_bytes(path.read_bytes()[:200])  # header fine, pixels cut: found only when decoded
    cmd = [sys.executable, "-m", "cyclegan.cli", "train", str(unaligned_root), "--checkpoints-dir",
           str(tmp_path / "r"), *TINY_ARGS, "--num-workers", "2", "--max-steps", "14"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("cyclegan: error: cannot read image")
    assert "img_003.png" in out.stderr and "Traceback" not in out.stderr
