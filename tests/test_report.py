"""RUN_DIR/report.html (cyclegan.report), its background refresher, the CLI, and TensorBoard logging."""

from __future__ import annotations

import argparse
import base64
import csv
import importlib.util
import io
import json
import re
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan import cli
from cyclegan.config import ConfigError, RunConfig, TrainConfig
from cyclegan.cli import build_parser
from cyclegan.report import ReportRefresher, read_loss_log, sliding_mean, write_report
from cyclegan.report import read as report_read
from cyclegan.report import refresher as report_refresher
from cyclegan.rundir import CheckpointError

COLUMNS = ["step", "epoch", "lr", "sec_per_step", "gan_ab", "gan_ba", "cycle_a", "cycle_b", "idt_a", "idt_b",
           "disc_a", "disc_b"]
SECTIONS = ("summary", "losses", "lr", "timing", "samples", "evaluation", "config")
DATA_URI = re.compile(r'src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"')
EVAL = {
    "AtoB": {"fid": 61.25, "kid_mean": 0.0213, "kid_std": 0.0011, "cycle_l1": 0.1034, "n_fake": 120, "n_real": 130},
    "BtoA": {"fid": 87.5, "kid_mean": 0.0402, "kid_std": 0.0019, "cycle_l1": 0.1275, "n_fake": 130, "n_real": 120},
}


def write_log(path: Path, rows: int, partial_tail: str = "") -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(rows):
            step = (i + 1) * 100
            w.writerow([step, step // 1000 + 1, f"{2e-4 * (1 - i / max(rows, 1)):.3e}", f"{0.2 + 0.01 * rng.random():.4f}",
                        *[f"{abs(rng.normal(0.5, 0.1)):.5f}" for _ in range(4)], "0.00000", "0.00000",
                        *[f"{abs(rng.normal(0.25, 0.05)):.5f}" for _ in range(2)]])
        f.write(partial_tail)


def write_grid(path: Path, size: tuple[int, int] = (60, 40), seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "fake"
    run.mkdir(parents=True)
    TrainConfig(run=RunConfig(name="fake", checkpoints_dir=str(tmp_path / "runs"))).save(run / "config.json")
    # the last row is being appended right now: no newline yet, fields missing
    write_log(run / "loss_log.csv", 30, partial_tail="3100,4,1.9e-04,0.2,0.51")
    for i, step in enumerate((400, 800, 1200)):
        write_grid(run / "samples" / f"step_{step:08d}.png", seed=i)
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text(json.dumps(EVAL))
    return run


def embedded_images(page: str) -> list[tuple[str, Image.Image]]:
    out = []
    for kind, data in DATA_URI.findall(page):
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        img.load()
        assert img.format.lower() == kind
        out.append((kind, img))
    return out


def test_report_has_every_section_and_decodable_images(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text()
    assert "<title>CycleGAN run fake</title>" in page
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for section in ("model", "data", "loss", "optim", "run"):
        assert f'id="config-{section}"' in page
    for direction, scores in EVAL.items():
        assert f'id="eval-{direction}"' in page
        assert f"{scores['fid']:.6g}" in page and f"{scores['cycle_l1']:.6g}" in page
    for name in ("fid", "kid_mean", "kid_std", "cycle_l1", "n_fake", "n_real"):
        assert f"<th>{name}</th>" in page
    images = embedded_images(page)
    kinds = [k for k, _ in images]
    assert kinds.count("png") == 3  # losses, learning rate, time per step
    assert kinds.count("jpeg") == 3  # the three sample grids
    assert all(img.width > 10 and img.height > 10 for _, img in images)
    assert "step 1200" in page and page.index("step 1200") < page.index("step 400")  # newest first
    # self-contained: nothing to fetch
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page and "<link" not in page
    # disabled terms (identity weights 0 here) are named, not drawn
    assert "idt_a, idt_b" in page
    # the partial last row is ignored; the summary shows the last complete one
    assert "<td class=\"num\">3000</td>" in page
    assert not list(run_dir.glob(".report.html.*"))  # no temporary file left behind


def test_read_loss_log_drops_partial_and_bad_rows(tmp_path):
    path = tmp_path / "loss_log.csv"
    write_log(path, 5, partial_tail="600,1,2.0e-04,0.2,0.5,0.5,0.5,0.5,0.0,0.0,0.2,0.2")  # complete fields, no newline
    log = read_loss_log(path)
    assert log["step"].tolist() == [100, 200, 300, 400, 500]
    with open(path, "a", newline="") as f:
        f.write("\r\n700,1,2e-4,0.2,0.5,,0.5,0.5,0,0,0.2,0.2\r\n800,1,2e-4,0.2,0.5,0.5,0.5,0.5,0,0,0.2,0.2\r\n")
    log = read_loss_log(path)
    assert log["step"].tolist() == [100, 200, 300, 400, 500, 600, 800]  # 700 has an empty field
    assert set(log) == set(COLUMNS)
    assert read_loss_log(tmp_path / "missing.csv") == {}


def test_sliding_mean_matches_naive():
    x = np.random.default_rng(1).random(50)
    for window in (1, 3, 10, 80):
        expected = [x[max(0, i - window + 1): i + 1].mean() for i in range(len(x))]
        np.testing.assert_allclose(sliding_mean(x, window), expected)


def test_page_stays_small_with_many_large_grids(tmp_path):
    run = tmp_path / "long"
    run.mkdir()
    TrainConfig().save(run / "config.json")
    write_log(run / "loss_log.csv", 2000)
    # a 256 px run's grid (4 columns, 8 rows) of noise: the worst case for JPEG
    first = run / "samples" / "step_00000400.png"
    write_grid(first, size=(4 * 258 + 2, 8 * 258 + 2 * 14 + 2))
    for i in range(2, 51):
        shutil.copyfile(first, run / "samples" / f"step_{400 * i:08d}.png")
    page = write_report(run).read_text()
    assert len(page.encode()) < 1_500_000
    assert "newest 6 of 50 grids" in page
    thumbs = [img for kind, img in embedded_images(page) if kind == "jpeg"]
    assert len(thumbs) == 6 and all(t.width <= report_read.THUMB_SIZE[0] and t.height <= report_read.THUMB_SIZE[1] for t in thumbs)
    # asking for all 50 still gives a small page: older grids beyond the byte budget are left out
    page = write_report(run, max_grids=50).read_text()
    assert len(page.encode()) < 1_500_000
    assert "older grids left out" in page


def test_fresh_run_with_only_config(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    TrainConfig().save(run / "config.json")
    page = write_report(run).read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "no loss rows logged yet" in page and "no sample grids yet" in page and "not evaluated yet" in page
    assert embedded_images(page) == []
    (run / "loss_log.csv").write_text(",".join(COLUMNS) + "\r\n")  # header only, as at step 0
    assert "no loss rows logged yet" in write_report(run).read_text()


def test_a_single_row_and_a_grid_being_written(run_dir):
    write_log(run_dir / "loss_log.csv", 1)
    (run_dir / "samples" / "step_00001600.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # cut short
    page = write_report(run_dir).read_text()
    assert "step_00001600.png" in page  # named as left out, the others still shown
    assert [k for k, _ in embedded_images(page)].count("jpeg") == 3


def test_not_a_run_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        write_report(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no config.json"):
        write_report(tmp_path)


def test_refresher_never_blocks_and_writes_at_close(run_dir, monkeypatch):
    real = report_refresher.write_report
    release = threading.Event()
    calls = []

    def slow(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(report_refresher, "write_report", slow)
    refresher = ReportRefresher(run_dir, every_steps=10)
    assert refresher.maybe_refresh(5) is False  # not due
    assert refresher.maybe_refresh(10) is True
    assert refresher.maybe_refresh(20) is False  # due, but the previous refresh still runs
    # the first refresh is still held by `release`: had maybe_refresh waited for it, it would not be running
    assert refresher.running and not (run_dir / "report.html").exists()
    release.set()
    path = refresher.close()
    assert path == run_dir / "report.html" and path.is_file()
    assert calls == ["cyclegan-report", threading.current_thread().name]
    assert not refresher.running


def test_refresher_warns_once_and_goes_on(run_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report_refresher, "write_report", broken)
    refresher = ReportRefresher(run_dir, every_steps=1)
    with pytest.warns(RuntimeWarning, match="disk full") as record:
        for step in range(1, 4):
            assert refresher.maybe_refresh(step)
            refresher._thread.join()
        assert refresher.close() is None
    assert len(record) == 1


def test_refresher_every_zero_writes_only_at_close(run_dir):
    refresher = ReportRefresher(run_dir, every_steps=0)
    assert not any(refresher.maybe_refresh(s) for s in range(0, 50, 5))
    assert refresher.close() == run_dir / "report.html"
    with pytest.raises(ConfigError):
        ReportRefresher(run_dir, every_steps=-1)


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def test_cli_report(run_dir, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr(cli.webbrowser, "open", opened.append)
    args = _parser().parse_args(["report", str(run_dir), "--max-grids", "2", "--open"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert opened == [(run_dir / "report.html").resolve().as_uri()]
    assert [k for k, _ in embedded_images((run_dir / "report.html").read_text())].count("jpeg") == 2
    args = _parser().parse_args(["report", str(run_dir / "missing")])
    with pytest.raises(CheckpointError) as err:
        args.func(args)
    assert "\n" not in str(err.value)
    args = _parser().parse_args(["report", str(run_dir), "--max-grids", "-1"])
    with pytest.raises(ConfigError):
        args.func(args)


# ---------------------------------------------------------------- TensorBoard


def test_tensorboard_logger_writes_events(tmp_path):
    pytest.importorskip("tensorboard", reason="needs tensorboard: pip install tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cyclegan.tensorboard import TensorBoardLogger

    log_dir = tmp_path / "tb"
    logger = TensorBoardLogger(log_dir)
    for step in (100, 200):
        logger.log_losses(step, {"gan_ab": 0.5, "cycle_a": 0.25, "disc_a": 0.2}, lr=2e-4, sec_per_step=0.1)
    logger.log_image(200, "samples", Image.new("RGB", (30, 20), (200, 10, 10)))
    logger.close()
    events = list(log_dir.glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss_G/gan_ab", "loss_G/cycle_a", "loss_D/disc_a", "train/lr", "train/sec_per_step"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("loss_G/gan_ab")] == [100, 200]
    assert acc.Scalars("train/lr")[0].value == pytest.approx(2e-4)
    assert tags["images"] == ["samples"]
    assert (acc.Images("samples")[0].width, acc.Images("samples")[0].height) == (30, 20)


def test_tensorboard_missing_is_a_config_error(tmp_path, monkeypatch):
    from cyclegan.tensorboard import TensorBoardLogger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"^--tensorboard needs the tensorboard package: pip install tensorboard$"):
        TensorBoardLogger(tmp_path / "tb")


# ---------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium: apt-get install -y chromium")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs Playwright: pip install playwright")
def test_report_renders_in_chromium(run_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    path = write_report(run_dir)
    shot = tmp_path / "report.png"
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(10_000)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri())
            assert page.title() == "CycleGAN run fake"
            for section in SECTIONS:
                assert page.locator(f"section#{section} h2").count() == 1
            # every embedded image really decodes in the browser
            sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            assert len(sizes) == 6 and all(ok and w > 0 and h > 0 for ok, w, h in sizes)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    img = Image.open(shot)
    assert img.format == "PNG" and img.height > 900
    arr = np.asarray(img.convert("L"))
    assert arr.std() > 10 and (arr < 100).mean() > 0.01  # not blank: text, plots and grids drawn


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian Chromium at /usr/bin/chromium: apt-get install -y chromium")
@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs Playwright: pip install playwright")
def test_report_of_a_real_short_run_opens_in_chromium(unaligned_root, tmp_path):
    from playwright.sync_api import sync_playwright

    from cyclegan.training.loop import train
    from conftest import tiny_config

    run_dir = train(tiny_config(unaligned_root, tmp_path / "runs", max_steps=4))  # writes report.html at the end
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((run_dir / "report.html").resolve().as_uri())
            assert page.title() == "CycleGAN run tiny"
            sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            assert sizes and all(ok and w > 0 for ok, w in sizes)
            page.screenshot(path=str(tmp_path / "shot.png"), full_page=True)
        finally:
            browser.close()
    assert Image.open(tmp_path / "shot.png").height > 900
