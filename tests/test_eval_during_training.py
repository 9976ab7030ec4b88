"""Evaluation during training (--eval-freq): readings in eval_log.csv, the best checkpoint, resume,
the report's curves and summary. A tiny feature extractor stands in for Inception (the real one
runs in the tests marked slow)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_images, needs_inception, tiny_config
from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.report import write_report
from cyclegan.report.scores import kid_trend, mean_kid_by_step
from cyclegan.training import evaluation
from cyclegan.rundir import RunDir, latest_checkpoint
from cyclegan.training.evaluation import EVAL_LOG, read_best, read_rows, recover_best
from cyclegan.training.loop import train


def _tiny_features(images, batch_size=50, device="auto", progress=True, model=None):
    """8 x 8 mean colours per image (192-d): depends on the content, costs nothing."""
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    out = []
    for item in items:
        t = torch.as_tensor(np.asarray(item)) if not isinstance(item, torch.Tensor) else item
        if t.dtype == torch.uint8:  # (H, W, 3) arrays
            t = t.permute(2, 0, 1).float() / 127.5 - 1
        t = t.float().expand(3, -1, -1)
        out.append(torch.nn.functional.adaptive_avg_pool2d(t[None], 8).flatten().double().numpy())
    return np.stack(out)


@pytest.fixture
def tiny_extractor(monkeypatch):
    calls = []

    def features(images, **kwargs):
        result = _tiny_features(images, **kwargs)
        calls.append(len(result))
        return result

    monkeypatch.setattr(evaluation, "extract_features", features)
    monkeypatch.setattr(evaluation, "load_inception", lambda device: None)
    monkeypatch.setattr(evaluation, "inception_weights_path", lambda: Path("tiny"))
    return calls


def _cfg(root, runs, name="ev", **run):
    cfg = tiny_config(root, runs, name=name, **{"eval_freq": 2, "eval_size": 2, "report_freq": 0, **run})
    return cfg


def test_readings_best_checkpoint_and_report(unaligned_root, tmp_path, tiny_extractor, capsys):
    run_dir = train(_cfg(unaligned_root, tmp_path / "runs", max_steps=5))
    rows = read_rows(run_dir / EVAL_LOG)
    # steps 2 and 4 (multiples of --eval-freq) and 5 (the last step), each direction
    assert [(int(r["step"]), r["direction"]) for r in rows] == [
        (s, d) for s in (2, 4, 5) for d in ("AtoB", "BtoA")]
    for r in rows:
        assert float(r["kid_std"]) >= 0 and float(r["fid"]) > 0 and float(r["cycle_l1"]) > 0
        assert int(r["n_fake"]) == 2 and int(r["n_real"]) == 2
        assert r["mode_collapse"] and r["checkerboard"]
    # the real images' features are extracted once per run; then 2 fakes per direction per reading
    assert tiny_extractor == [2, 2] + [2, 2] * 3
    best = read_best(run_dir)
    steps, kids, _ = mean_kid_by_step(rows)
    assert best["step"] == int(steps[np.argmin(kids)]) and best["mean_kid"] == pytest.approx(kids.min(), abs=1e-5)
    assert set(best["scores"]) == {"AtoB", "BtoA"} and "evaluation images" in best["chosen_on"]
    best_dir = RunDir(run_dir).checkpoints_dir / "best"
    assert sorted(p.name for p in best_dir.iterdir()) == [
        "best.json", "disc_a.safetensors", "disc_b.safetensors", "gen_ab.safetensors", "gen_ba.safetensors"]
    assert latest_checkpoint(run_dir).name != "best"  # the final checkpoint stays the default
    out = capsys.readouterr().out
    assert out.count("eval step") >= 3
    page = write_report(run_dir).read_text()
    assert page.index('id="done"') < page.index('id="summary"')  # the summary is at the top
    assert "Is it done?" in page and f"step {best['step']}" in page
    assert 'alt="evaluation scores during training"' in page

    # the best checkpoint translates with the usual command (its config is found two levels up)
    make_images(tmp_path / "in", 1, size=(32, 32))
    assert main(["translate", str(best_dir / "gen_ab.safetensors"), str(tmp_path / "in"),
                 "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_best_is_never_pruned_and_survives_a_crash_between_renames(unaligned_root, tmp_path, tiny_extractor):
    run_dir = train(_cfg(unaligned_root, tmp_path / "runs", max_steps=4))
    root = RunDir(run_dir).checkpoints_dir
    before = (root / "best" / "gen_ab.safetensors").read_bytes()
    nets = {"x": torch.nn.Linear(1, 1)}
    RunDir(run_dir).save_checkpoint(nets, {"progress": {"epoch": 1, "position": 0, "step": 99}}, "step_00000099")  # prunes superseded step_ checkpoints
    assert (root / "best" / "gen_ab.safetensors").read_bytes() == before
    # a crash after the old best was moved aside and before the new one took its place
    os.replace(root / "best", root / ".old-best")
    (root / ".tmp-best").mkdir()
    recover_best(RunDir(run_dir))
    assert (root / "best" / "gen_ab.safetensors").read_bytes() == before
    assert not (root / ".old-best").exists() and not (root / ".tmp-best").exists()


def test_resume_keeps_the_rows_and_the_schedule(unaligned_root, tmp_path, tiny_extractor):
    cfg = _cfg(unaligned_root, tmp_path / "runs", max_steps=4)
    run_dir = train(cfg)
    first = read_rows(run_dir / EVAL_LOG)
    # a reading logged after the last checkpoint (a crash before the next one): measured again on resume
    with open(run_dir / EVAL_LOG, "a") as f:
        f.write("5,AtoB,9,9,9,9,2,2,0,1,1,1,1,1,\n")
    best_before = read_best(run_dir)
    train(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, max_steps=7)), resume=True)
    rows = read_rows(run_dir / EVAL_LOG)
    assert sorted({int(r["step"]) for r in rows}) == [2, 4, 6, 7]
    assert rows[:4] == first  # the rows before the resume point are kept as they were
    assert not any(r["kid_mean"] == "9" for r in rows)
    best = read_best(run_dir)
    steps, kids, _ = mean_kid_by_step(rows)
    assert best["mean_kid"] == pytest.approx(min(kids), abs=1e-5)
    assert best["mean_kid"] <= best_before["mean_kid"]


def test_eval_freq_zero_writes_nothing(unaligned_root, tmp_path, tiny_extractor):
    run_dir = train(_cfg(unaligned_root, tmp_path / "runs", max_steps=2, eval_freq=0))
    assert not (run_dir / EVAL_LOG).exists() and not (RunDir(run_dir).checkpoints_dir / "best").exists()
    assert tiny_extractor == []
    assert "no evaluations during training" in write_report(run_dir).read_text()


@needs_inception  # without the weights, that is the one line given first
def test_bad_eval_settings_fail_before_training(unaligned_root, tmp_path, capsys):
    base = ["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "runs"), "--no-progress",
            "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
            "--num-workers", "0", "--max-steps", "2"]
    assert main([*base, "--name", "a", "--eval-freq", "1", "--eval-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err
    assert main([*base, "--name", "b", "--eval-freq", "-1"]) == 2
    assert "run.eval_freq must be >= 0" in capsys.readouterr().err
    assert main([*base, "--name", "c", "--eval-freq", "1", "--eval-size", "1"]) == 2
    assert "run.eval_size" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unpaired"):
        cfg = _cfg(unaligned_root, tmp_path / "runs", name="d", max_steps=1)
        evaluation.TrainingEvaluator.for_run(
            dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset_mode="aligned")),
            tmp_path, torch.device("cpu"), evaluation.ProcessGroup(), 0)


def test_kid_trend():
    std = np.full(5, 0.01)
    assert kid_trend(np.array([0.30]), std[:1]) == "too early"
    assert kid_trend(np.array([0.30, 0.25, 0.20, 0.15]), std[:4]) == "improving"
    assert kid_trend(np.array([0.30, 0.20, 0.205, 0.199]), std[:4]) == "flat"
    assert kid_trend(np.array([0.30, 0.20, 0.22, 0.25]), std[:4]) == "worse"
    # only the last TREND_WINDOW readings count: an old low point does not make it "worse"
    assert kid_trend(np.array([0.05, 0.30, 0.25, 0.20, 0.15]), np.full(5, 0.01)) == "improving"


@pytest.mark.slow
@needs_inception
def test_real_inception_readings(unaligned_root, tmp_path):
    run_dir = train(_cfg(unaligned_root, tmp_path / "runs", max_steps=4))
    rows = read_rows(run_dir / EVAL_LOG)
    assert len(rows) == 4 and all(float(r["fid"]) > 0 for r in rows)
    assert (RunDir(run_dir).checkpoints_dir / "best" / "best.json").is_file()


@pytest.mark.slow
@needs_inception
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_processes_rank0_evaluates_while_the_other_waits(tmp_path):
    root = tmp_path / "data"
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        make_images(root / folder, 8 if folder.startswith("train") else 3, seed=seed)
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "cyclegan", "train", str(root), "--name", "ddp", "--checkpoints-dir", str(runs),
            "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
            "--num-workers", "0", "--pool-size", "0", "--n-epochs", "1", "--n-epochs-decay", "1",
            "--print-freq", "1", "--save-latest-freq", "2", "--no-progress", "--max-steps", "4",
            "--eval-freq", "2", "--eval-size", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    readings = [line for line in done.stdout.splitlines() if line.startswith("eval step") and " KID " in line]
    assert len(readings) == 2  # rank 0 alone evaluates and prints
    rows = read_rows(runs / "ddp" / EVAL_LOG)
    assert [int(r["step"]) for r in rows] == [2, 2, 4, 4]
    assert json.loads((runs / "ddp" / "checkpoints" / "best" / "best.json").read_text())["step"] in (2, 4)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium")
def test_report_with_readings_in_chromium(unaligned_root, tmp_path, tiny_extractor):
    pytest.importorskip("playwright")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    run_dir = train(_cfg(unaligned_root, tmp_path / "runs", max_steps=4))  # writes report.html at the end
    shot = tmp_path / "done.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((run_dir / "report.html").resolve().as_uri())
            headings = page.locator("h2").all_inner_texts()
            assert headings[0] == "Is it done?" and "Scores during training" in headings
            assert headings.index("Scores during training") == headings.index("Losses") + 1
            assert "KID trend" in page.locator("section#done").inner_text()
            scores = page.locator('section#scores img')
            assert scores.count() == 1
            assert page.evaluate("document.querySelector('section#scores img').naturalWidth") > 500
            scores.screenshot(path=str(shot))
        finally:
            browser.close()
    arr = np.asarray(Image.open(shot).convert("L"))
    assert arr.std() > 10  # axes, curves and labels drawn, not a blank box
