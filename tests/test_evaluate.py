import json
from pathlib import Path


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


def _aligned_labels_root(tmp_path):
    """A|B images: a noisy photo on the left, a 3-colour label map on the right."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "facades"
    colours = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200]], dtype=np.uint8)
    rng = np.random.default_rng(0)
    for phase, count in (("train", 4), ("test", 3)):
        (root / phase).mkdir(parents=True)
        for i in range(count):
            labels = colours[rng.integers(0, 3, (4, 4))].repeat(8, 0).repeat(8, 1)
            photo = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([photo, labels], axis=1)).save(root / phase / f"{i}.png")
    return root


@needs_inception
def test_aligned_run_gets_paired_metrics(tmp_path, capsys):
    import dataclasses

    root = _aligned_labels_root(tmp_path)
    cfg = tiny_config(root, tmp_path / "runs", max_steps=2)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset_mode="aligned"))
    run_dir = train(cfg)
    assert main(["evaluate", str(run_dir), "--labels", "B", "--fid-method", "fast", "--no-progress"]) == 0
    results = json.loads((run_dir / "eval" / "metrics.json").read_text())
    photo_to_labels, labels_to_photo = results["AtoB"], results["BtoA"]
    assert photo_to_labels["n_classes"] == 3 and photo_to_labels["n"] == 3
    assert 0 <= photo_to_labels["class_iou"] <= photo_to_labels["per_pixel_acc"] <= 1
    assert {"rmse", "within_threshold", "fid", "kid_mean"} <= set(labels_to_photo)
    assert "per_pixel_acc" in capsys.readouterr().out


@needs_inception
def test_size_option_translates_and_compares_at_that_size(unaligned_root, tmp_path):
    from PIL import Image

    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=1))
    assert main(["evaluate", str(run_dir), "--size", "16", "--no-cache", "--fid-method", "fast", "--no-progress"]) == 0
    results = json.loads((run_dir / "eval" / "metrics.json").read_text())
    for direction in ("AtoB", "BtoA"):
        for folder in (results[direction]["fake_dir"], results[direction]["real_dir"]):
            sizes = {Image.open(p).size for p in Path(folder).glob("*.png")}
            assert sizes == {(16, 16)}


@needs_inception
def test_aligned_size_keeps_label_colours_in_the_palette(tmp_path):
    import dataclasses

    import numpy as np
    from PIL import Image

    root = _aligned_labels_root(tmp_path)
    cfg = tiny_config(root, tmp_path / "runs", max_steps=1)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset_mode="aligned"))
    run_dir = train(cfg)
    assert main(["evaluate", str(run_dir), "--labels", "B", "--size", "20", "--fid-method", "fast", "--no-progress"]) == 0
    real_labels = sorted((run_dir / "eval" / "real_B").glob("*.png"))
    assert {Image.open(p).size for p in real_labels} == {(20, 20)}
    colours = {tuple(c) for p in real_labels for c in np.asarray(Image.open(p)).reshape(-1, 3)}
    assert colours <= {(200, 0, 0), (0, 200, 0), (0, 0, 200)}  # nearest-neighbour: no blended label colours
