"""Translate never overwrites, names every output uniquely, and leaves only complete files
(real read-only and full file systems, a real SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan.cli import main
from cyclegan.training.loop import train

from conftest import make_images, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(options) -> a fresh tmpfs folder (tests run as root); unmounted afterwards."""
    mounted = []

    def mount(options: str) -> Path:
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
        mounted.append(target)
        return target

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _translate(run_dir, *args) -> int:
    return main(["translate", str(run_dir), *map(str, args), "--no-progress"])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cyclegan: error:"), err
    return err


def _complete(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except OSError:
        return False


def test_output_dir_equal_to_input_folder_never_touches_the_originals(run_dir, tmp_path, capsys):
    pics = tmp_path / "pics"
    make_images(pics, 1, size=(20, 16), suffix=".png")  # img_000.png: its output name is its own
    before = (pics / "img_000.png").read_bytes()
    assert _translate(run_dir, pics, "--output-dir", pics) == 2
    err = _one_error_line(capsys)
    assert "would overwrite the input" in err and str(pics / "img_000.png") in err
    assert (pics / "img_000.png").read_bytes() == before and sorted(p.name for p in pics.iterdir()) == ["img_000.png"]
    # --overwrite does not make replacing an input acceptable.
    assert _translate(run_dir, pics, "--output-dir", pics, "--overwrite") == 2
    assert (pics / "img_000.png").read_bytes() == before


def test_rerun_beside_jpegs_refuses_to_take_or_replace_earlier_outputs(run_dir, tmp_path, capsys):
    pics = tmp_path / "pics"
    make_images(pics, 2, size=(20, 16), suffix=".jpg")
    assert _translate(run_dir, pics, "--output-dir", pics) == 0
    assert sorted(p.name for p in pics.iterdir()) == ["img_000.jpg", "img_000.png", "img_001.jpg", "img_001.png"]
    outputs = {p: p.read_bytes() for p in pics.glob("*.png")}
    capsys.readouterr()
    # A rerun would read the PNGs as inputs and write over them: refused, nothing changes.
    assert _translate(run_dir, pics, "--output-dir", pics) == 2
    _one_error_line(capsys)
    assert {p: p.read_bytes() for p in pics.glob("*.png")} == outputs and len(list(pics.iterdir())) == 4


def test_existing_output_needs_overwrite(run_dir, tmp_path, capsys):
    make_images(tmp_path / "in", 1, size=(20, 16))
    out = tmp_path / "out"
    out.mkdir()
    (out / "img_000.png").write_bytes(b"the user's own file")
    assert _translate(run_dir, tmp_path / "in", "--output-dir", out) == 2
    err = _one_error_line(capsys)
    assert "already exists" in err and "--overwrite" in err
    assert (out / "img_000.png").read_bytes() == b"the user's own file"
    assert _translate(run_dir, tmp_path / "in", "--output-dir", out, "--overwrite") == 0
    assert _complete(out / "img_000.png")


def test_colliding_names_are_all_written_and_the_count_is_true(run_dir, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for name, size in (("a.jpg", (20, 16)), ("a.png", (24, 12)), ("a_1.jpg", (16, 28))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(inputs / name)
    out = tmp_path / "out"
    assert _translate(run_dir, inputs / "a.jpg", inputs / "a.png", inputs / "a_1.jpg", "--output-dir", out) == 0
    assert "wrote 3 files" in capsys.readouterr().out
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"a.png": (20, 16), "a_1.png": (24, 12), "a_1_1.png": (16, 28)}


def test_output_dir_that_is_a_file_is_one_line(run_dir, tmp_path, capsys):
    make_images(tmp_path / "in", 1)
    (tmp_path / "file").write_text("x")
    assert _translate(run_dir, tmp_path / "in", "--output-dir", tmp_path / "file") == 2
    assert "is a file" in _one_error_line(capsys)


def test_read_only_output_dir_is_one_line(run_dir, tmp_path, capsys, mount_tmpfs):
    make_images(tmp_path / "in", 1)
    readonly = mount_tmpfs("ro,size=1m")
    assert _translate(run_dir, tmp_path / "in", "--output-dir", readonly) == 2
    assert str(readonly) in _one_error_line(capsys)
    assert _translate(run_dir, tmp_path / "in", "--output-dir", readonly / "sub") == 2
    _one_error_line(capsys)


def test_full_disk_is_one_line_and_leaves_only_complete_files(run_dir, tmp_path, capsys, mount_tmpfs):
    inputs = tmp_path / "in"
    make_images(inputs, 1, size=(16, 16), seed=1)  # img_000: a small PNG, fits
    rng = np.random.default_rng(2)
    # A big image whose translation (a noisy PNG of about 1.5 MB) cannot fit in what is left.
    Image.fromarray(rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)).save(inputs / "zz_big.png")
    small_fs = mount_tmpfs("size=256k")
    assert _translate(run_dir, inputs, "--output-dir", small_fs) == 2
    err = _one_error_line(capsys)
    assert "No space left on device" in err and "zz_big.png" in err
    left = sorted(p.name for p in small_fs.iterdir())
    assert left == ["img_000.png"] and _complete(small_fs / "img_000.png")  # no partial file, no temporary


@pytest.mark.slow
def test_kill_9_leaves_no_partial_file_under_a_final_name(run_dir, tmp_path):
    inputs = tmp_path / "in"
    rng = np.random.default_rng(3)
    inputs.mkdir()
    for i in range(12):  # large noisy outputs: PNG encoding takes long enough to be caught in the middle
        Image.fromarray(rng.integers(0, 256, (900, 900, 3), dtype=np.uint8)).save(inputs / f"p{i:02d}.png",
                                                                                  compress_level=0)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan", "translate", str(run_dir), str(inputs),
                             "--output-dir", str(out), "--no-progress"], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
        time.sleep(0.02)
    time.sleep(0.15)  # somewhere in the next image: reading, translating or encoding
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    finals = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert finals and len(finals) < 12  # killed part-way
    assert all(_complete(p) and Image.open(p).size == (900, 900) for p in finals)
    assert all(p.name.endswith(".tmp") for p in out.iterdir() if p.name.startswith("."))
