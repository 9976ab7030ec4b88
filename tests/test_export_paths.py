"""`cyclegan export` to a folder or to an unwritable place: one line, nothing written (real read-only tmpfs)."""

from __future__ import annotations

import os
import subprocess

import pytest

from cyclegan.cli import main
from cyclegan.training.loop import train

from conftest import make_images, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_paths")
    for domain, seed in (("trainA", 1), ("trainB", 2)):
        make_images(root / "data" / domain, 3, seed=seed)
    return train(tiny_config(root / "data", root / "runs", max_steps=1))


def _export(run_dir, output, capsys) -> str:
    assert main(["export", str(run_dir), "--format", "torchscript", "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cyclegan: error:"), err
    return err


def test_export_to_a_folder_is_one_line(run_dir, tmp_path, capsys):
    assert "is a folder" in _export(run_dir, tmp_path, capsys)


def test_export_below_a_file_is_one_line(run_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert "cannot create the folder" in _export(run_dir, tmp_path / "file" / "model.pt", capsys)


def test_export_to_a_read_only_file_system_is_one_line(run_dir, tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    target = tmp_path / "ro"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(target)], check=True)
    try:
        assert "not writable" in _export(run_dir, target / "model.pt", capsys)
        assert not list(target.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
