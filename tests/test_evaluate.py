import json

import pytest

from cyclegan.cli import main
from cyclegan.training.loop import train

from conftest import make_images, needs_inception, tiny_config


@needs_inception
def test_fake_real_form_writes_the_json_keys(tmp_path, capsys):
    make_images(tmp_path / "fake", 3, size=(32, 32), seed=1)
    make_images(tmp_path / "real", 4, size=(40, 30), seed=2)
    out = tmp_path / "m.json"
    assert main(["evaluate", "--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"), "--json", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    scores = json.loads(out.read_text())
    assert set(scores) == {"fid", "kid_mean", "kid_std", "n_fake", "n_real"}
    assert (scores["n_fake"], scores["n_real"]) == (3, 4) and scores["fid"] > 0
    assert "FID" in capsys.readouterr().out
    assert list((tmp_path / "cache").glob("*.npz"))  # the real set's features are cached


@needs_inception
def test_run_dir_protocol_both_directions(unaligned_root, tmp_path, capsys):
    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=1))
    assert main(["evaluate", str(run_dir), "--no-cache", "--fid-method", "fast", "--no-progress"]) == 0
    results = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert set(results) == {"AtoB", "BtoA"}
    assert results["AtoB"]["n_fake"] == 2 and results["AtoB"]["cycle_l1"] > 0
    assert len(list((run_dir / "eval" / "AtoB").glob("*.png"))) == 2
    assert "AtoB" in capsys.readouterr().out


def test_bad_evaluate_input_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    make_images(tmp_path / "real", 2)
    assert main(["evaluate", "--fake", str(tmp_path / "empty"), "--real", str(tmp_path / "real"), "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "empty" in err
    assert main(["evaluate", "--fake", str(tmp_path / "real")]) == 2
    assert "--real" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "real")]) == 2
    assert "not a run directory" in capsys.readouterr().err
