import subprocess
import sys

import pytest
from PIL import Image

from cyclegan.cli import main

from conftest import make_images

TINY = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
        "--num-workers", "0", "--no-progress"]


def test_train_resume_translate(unaligned_root, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    args = ["train", str(unaligned_root), "--name", "t", "--checkpoints-dir", runs, "--seed", "1", *TINY]
    assert main([*args, "--max-steps", "2"]) == 0
    assert main([*args, "--max-steps", "4", "--resume"]) == 0
    assert (tmp_path / "runs" / "t" / "checkpoints" / "step_00000004").is_dir()
    out = tmp_path / "out"
    assert main(["translate", f"{runs}/t", str(unaligned_root / "testA"), "--direction", "AtoB",
                 "--output-dir", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img_000.png", "img_001.png"]
    assert Image.open(out / "img_000.png").size == (24, 18)


def test_empty_folder_is_one_line_error(tmp_path, capsys):
    (tmp_path / "d" / "trainA").mkdir(parents=True)
    make_images(tmp_path / "d" / "trainB", 1)
    code = main(["train", str(tmp_path / "d"), "--checkpoints-dir", str(tmp_path / "r"), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "trainA" in err


def test_corrupt_image_is_one_line_error_naming_it(unaligned_root, tmp_path, capsys):
    bad = unaligned_root / "trainA" / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    code = main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "r"), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "broken.jpg" in err
    assert main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "r"), "--max-steps", "1",
                 "--on-bad-image", "skip", *TINY]) == 0


def test_translate_bad_run_dir(tmp_path, capsys):
    code = main(["translate", str(tmp_path / "nope"), str(tmp_path), "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_help_documents_defaults():
    out = subprocess.run([sys.executable, "-m", "cyclegan.cli", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "--lambda-a" in out.stdout and "(default: 10.0)" in out.stdout and "--max-steps" in out.stdout


@pytest.mark.parametrize("command", ["train", "translate", "evaluate", "study", "study-results", "export", "report"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: cyclegan " + command in capsys.readouterr().out
