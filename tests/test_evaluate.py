import json
from pathlib import Path


from cyclegan.cli import main
from cyclegan.evaluate import paired_folder_scores
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
    assert set(scores) == {"fid", "kid_mean", "kid_std", "n_fake", "n_real", "protocol"}
    assert scores["protocol"] == "ours"
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


def _save(path, array):
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def test_paired_folder_scores_photos_match_by_name(tmp_path):
    import numpy as np

    real = np.full((16, 16, 3), 100, dtype=np.uint8)
    _save(tmp_path / "real" / "a.jpg", real)  # JPEG of a flat colour stays exact
    _save(tmp_path / "real" / "b.png", real)
    _save(tmp_path / "fake" / "a.png", real)  # right
    _save(tmp_path / "fake" / "b.png", real + 10)  # every pixel 10 off: RMSE 10, none within 5
    scores = paired_folder_scores(tmp_path / "fake", tmp_path / "real")
    assert scores["n_pairs"] == 2
    assert abs(scores["rmse"] - 5.0) < 1e-9  # mean of 0 and 10
    assert scores["within_threshold"] == 0.5
    assert paired_folder_scores(tmp_path / "fake", tmp_path / "real", threshold=11)["within_threshold"] == 1.0


def test_paired_folder_scores_label_maps(tmp_path):
    import numpy as np

    colours = np.array([[200, 0, 0], [0, 200, 0]], dtype=np.uint8)
    true = colours[np.repeat([[0, 0, 1, 1]], 4, axis=0)].repeat(4, 0).repeat(4, 1)  # left half 0, right half 1
    wrong = true.copy()
    wrong[:, :4] = colours[1]  # half of class 0's pixels (a quarter of the image) predicted as class 1
    for name in ("x", "y"):
        _save(tmp_path / "train" / f"{name}.png", true)
        _save(tmp_path / "real" / f"{name}.png", true)
    _save(tmp_path / "fake" / "x.png", true)
    _save(tmp_path / "fake" / "y.png", wrong)
    scores = paired_folder_scores(tmp_path / "fake", tmp_path / "real", labels_from=tmp_path / "train")
    assert scores["n_classes"] == 2
    assert abs(scores["per_pixel_acc"] - 7 / 8) < 1e-9
    # over both images, class 0: 256 true pixels, 192 right; class 1: 256 true, all right, 64 false positives
    assert abs(scores["per_class_acc"] - (192 / 256 + 1) / 2) < 1e-9
    assert abs(scores["class_iou"] - (192 / 256 + 256 / 320) / 2) < 1e-9


def test_paired_folder_errors_are_one_line(tmp_path, capsys):
    import numpy as np

    img = np.zeros((8, 8, 3), dtype=np.uint8)
    _save(tmp_path / "real" / "a.png", img)
    _save(tmp_path / "real" / "b.png", img)
    _save(tmp_path / "fake" / "a.png", img)
    args = ["evaluate", "--fake", str(tmp_path / "fake"), "--real", str(tmp_path / "real"), "--paired", "--no-cache"]
    cases = [
        (lambda: None, "holds 1 images but"),  # different counts
        (lambda: _save(tmp_path / "fake" / "c.png", img), "no namesake"),  # b has no generated image, c no truth
        (lambda: ((tmp_path / "fake" / "c.png").unlink(), _save(tmp_path / "fake" / "b.png", np.zeros((4, 4, 3)))),
         "compared pixel by pixel"),  # sizes differ, label maps
    ]
    for prepare, message in cases:
        prepare()
        extra = ["--labels-from", str(tmp_path / "real")] if message == "compared pixel by pixel" else []
        assert main(args + extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert main(["evaluate", str(tmp_path), "--paired"]) == 2
    assert "--fake/--real form" in capsys.readouterr().err

