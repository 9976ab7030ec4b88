"""What a new user meets on the command line (issue 18): help, the authors' option names,
messages of translate / evaluate / train / report / study, and the Python API's Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from cyclegan import smoke
from cyclegan.authors_options import AUTHORS_OPTIONS, with_our_names
from cyclegan.cli import build_parser, main
from cyclegan.cli_help import preset_options
from cyclegan.config import ConfigError, DataConfig, ModelConfig, TrainConfig, RunConfig
from cyclegan.data.demo import demo_config
from cyclegan.evaluate_cli import TABLE_HEADER, results_table, size_hint

from conftest import SHARED_DATA, make_images

REPO = Path(__file__).resolve().parents[1]
TINY = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop-size", "32", "--load-size", "36",
        "--num-workers", "0", "--no-progress"]
COMMANDS = ["train", "translate", "evaluate", "study", "study-results", "export", "report"]


def _cli(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "cyclegan", *args], capture_output=True, text=True, env=full_env,
                          timeout=300, **kw)


# ---------------------------------------------------------------- help, commands, version


def _option_entries(help_text: str) -> list[str]:
    """The help of each option, joined over its wrapped lines."""
    entries: list[str] = []
    for line in help_text.splitlines():
        if re.match(r"^  -", line):
            entries.append(line)
        elif entries and line.startswith("   "):
            entries[-1] += " " + line.strip()
        elif not line.strip():
            entries.append("")
    return [e for e in entries if e]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_one_default_per_option(command):
    out = _cli(command, "--help")
    assert out.returncode == 0
    entries = _option_entries(out.stdout)
    assert len(entries) >= 2
    doubled = [e for e in entries if e.count("(default:") > 1]
    assert not doubled, doubled


def test_train_help_shows_the_demo_preset():
    out = _cli("train", "--help").stdout
    preset = preset_options(demo_config())
    assert "--generator resnet_6blocks" in preset and "--ngf 32" in preset and "--crop-size 64" in preset
    assert " ".join(preset.split()) in " ".join(out.split())
    assert "3 + 3 = 6 epochs" in out


def test_plain_cyclegan_lists_the_commands_and_version_works():
    out = _cli()
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("cyclegan 0.")


# ---------------------------------------------------------------- the authors' option names


def _parse(argv: list[str]):
    return build_parser().parse_args(with_our_names(argv))


def test_authors_aliases_parse_as_ours():
    theirs = _parse(["train", "--dataroot", "d", "--n_epochs", "3", "--n_epochs_decay", "4", "--netG", "unet_128",
                     "--load_size", "72", "--crop_size=64", "--continue_train", "--no_flip", "--lambda_A", "5",
                     "--num_threads", "0", "--checkpoints_dir", "r"])
    ours = _parse(["train", "d", "--n-epochs", "3", "--n-epochs-decay", "4", "--generator", "unet_128",
                   "--load-size", "72", "--crop-size", "64", "--resume", "--no-flip", "--lambda-a", "5",
                   "--num-workers", "0", "--checkpoints-dir", "r"])
    assert {k: v for k, v in vars(theirs).items() if k != "func"} == {k: v for k, v in vars(ours).items() if k != "func"}
    assert _parse(["translate", "run", "x.jpg", "--results_dir", "o"]).output_dir == Path("o")


def test_every_alias_names_an_option_we_have_and_help_lists_it_once():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for entry in AUTHORS_OPTIONS:
        if not entry.alias:
            continue
        ours = subparsers[entry.command]
        strings = {s for action in ours._actions for s in action.option_strings}
        dests = {action.metavar or action.dest for action in ours._actions if not action.option_strings}
        assert entry.ours in strings or entry.ours.lower() in dests, entry
    train_help = _cli("train", "--help").stdout
    listed = [line.split()[0] for line in train_help.splitlines() if line.startswith("  --")]
    assert listed.count("--n-epochs") == 1 and listed.count("--generator") == 1
    assert not [name for name in listed if "_" in name]  # no authors' spelling among the options


@pytest.mark.parametrize("argv, ours", [
    (["train", "--gpu_ids", "-1"], "--device cpu"),
    (["train", "--gpu_ids", "1"], "--device cuda:1"),
    (["train", "--gpu_ids", "0,1"], "torchrun --nproc_per_node 2"),
    (["train", "--model", "cycle_gan"], "--method cyclegan"),
    (["train", "--model", "pix2pix"], "--method pix2pix"),
    (["train", "--epoch_count", "5"], "--resume"),
    (["translate", "run", "x", "--epoch", "latest"], "gen_ab.safetensors"),
    (["translate", "run", "x", "--name", "h2z"], "run directory"),
    (["test", "--dataroot", "x"], "cyclegan translate"),
])
def test_authors_options_with_another_meaning_name_ours(argv, ours):
    out = _cli(*argv)
    err = out.stderr.strip()
    assert out.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("cyclegan: error: ") and ours in err and "usage:" not in err


def _docs_rows(section_title: str) -> list[dict[str, str]]:
    """The rows of the first table under `section_title`, as {column header: cell}."""
    text = (REPO / "docs" / "options.md").read_text()
    section = text.split(section_title, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.mark.parametrize("command, title", [("train", "## train.py / base options -> `cyclegan train`"),
                                            ("translate", "## test.py -> `cyclegan translate`")])
def test_docs_options_table_is_the_code_table(command, title):
    """docs/options.md's mapping and AUTHORS_OPTIONS cannot drift: same options, same alias marks, same target."""
    table = {e.name: e for e in AUTHORS_OPTIONS if e.command == command}
    documented: dict[str, dict[str, str]] = {}
    for row in _docs_rows(title):
        for name in re.findall(r"`(--\w+)", row["authors' option"]):
            documented[name] = row
    assert len(documented) > 5
    for name, row in documented.items():
        typed = row["typed here"]
        if name not in table:
            assert typed == "same name", f"{name}: documented, not in AUTHORS_OPTIONS, typed here: {typed}"
            assert f"`{name}`" in row["ours"] or f"`{name} " in row["ours"], row
            continue
        entry = table[name]
        assert typed == ("alias" if entry.alias else "error naming ours"), (name, typed)
        assert entry.ours in row["ours"], (name, entry.ours, row["ours"])
    assert sorted(set(table) - set(documented)) == []


# ---------------------------------------------------------------- translate


def test_translate_skips_a_bad_image_when_asked_and_says_so(unaligned_root, tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(["train", str(unaligned_root), "--name", "t", "--checkpoints-dir", runs, "--max-steps", "1", *TINY]) == 0
    folder = tmp_path / "in"
    make_images(folder, 2)
    (folder / "broken.png").write_bytes(b"not an image")
    capsys.readouterr()
    code = main(["translate", f"{runs}/t", str(folder), "--output-dir", str(tmp_path / "o1"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "broken.png" in err and "--on-bad-image skip" in err
    code = main(["translate", f"{runs}/t", str(folder), "--output-dir", str(tmp_path / "o2"), "--no-progress",
                 "--on-bad-image", "skip"])
    captured = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["img_000.png", "img_001.png"]
    assert "cyclegan: warning: skipping" in captured.err and "broken.png" in captured.err
    assert "--on-bad-image skip" not in captured.err
    assert "wrote 2 files" in captured.out and "1 unreadable skipped" in captured.out
    assert main(["translate", f"{runs}/t", str(folder / "img_000.png"), "--output-dir", str(tmp_path / "o3"),
                 "--no-progress"]) == 0
    assert f"wrote 1 file to {tmp_path / 'o3'}" in capsys.readouterr().out


def test_translate_error_does_not_land_on_the_progress_bar(unaligned_root, tmp_path):
    runs = str(tmp_path / "runs")
    assert main(["train", str(unaligned_root), "--name", "t", "--checkpoints-dir", runs, "--max-steps", "1", *TINY]) == 0
    folder = tmp_path / "in"
    make_images(folder, 2)
    (folder / "zz_broken.png").write_bytes(b"not an image")
    out = _cli("translate", f"{runs}/t", str(folder), "--output-dir", str(tmp_path / "o"))  # progress bar on
    assert out.returncode == 2
    assert re.search(r"(^|\n)cyclegan: error: cannot read image .*zz_broken.png", out.stderr), repr(out.stderr)


# ---------------------------------------------------------------- training messages, Ctrl-C


def test_explicit_resume_says_where_it_resumes_from(unaligned_root, tmp_path, capsys):
    args = ["train", str(unaligned_root), "--name", "r", "--checkpoints-dir", str(tmp_path / "runs"), *TINY]
    assert main([*args, "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--max-steps", "2", "--resume"]) == 0
    assert f"resuming {tmp_path / 'runs' / 'r'} from step_00000001" in capsys.readouterr().out


def test_skip_warning_in_training_is_one_line_without_code_paths(unaligned_root, tmp_path):
    good = unaligned_root / "trainA" / "img_002.png"
    Image.new("RGB", (64, 64), "red").save(good)
    good.write_bytes(good.read_bytes()[:-30])  # the header reads, the pixels do not: found inside the loader
    out = _cli("train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "r"), "--max-steps", "6",
               "--on-bad-image", "skip", *TINY)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "skipping" in line]
    assert warnings and all(line.startswith("cyclegan: warning: skipping") for line in warnings)
    assert "site-packages" not in out.stderr and ".py:" not in out.stderr


def _long_run(unaligned_root: Path, runs: Path) -> list[str]:
    return [str(unaligned_root), "--name", "sig", "--checkpoints-dir", str(runs), *TINY,
            "--n-epochs", "500", "--n-epochs-decay", "0", "--print-freq", "1", "--save-latest-freq", "100000"]


def _wait_for_rows(log: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) > 3):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)


def test_ctrl_c_in_the_cli_announces_saves_and_exits_130(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan", "train", *_long_run(unaligned_root, runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(runs / "sig" / "loss_log.csv", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGINT: stopping after this step and saving a checkpoint" in err
    assert "checkpoint saved" in out and "--resume" in out
    assert (runs / "sig" / "checkpoints" / "LATEST").is_file()


def test_ctrl_c_in_python_api_raises_keyboard_interrupt_after_the_checkpoint(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\nfrom cyclegan.cli import build_parser\nfrom cyclegan.config import config_from_args\n"
        "import cyclegan\n"
        f"args = build_parser().parse_args(['train', *{_long_run(unaligned_root, runs)!r}])\n"
        "cfg = config_from_args(args)\n"
        "cyclegan.train(cfg)\n"
        "print('AFTER TRAIN')\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(runs / "sig" / "loss_log.csv", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert "AFTER TRAIN" not in out and "KeyboardInterrupt" in err
    assert proc.returncode != 0
    assert "checkpoint saved" in out and (runs / "sig" / "checkpoints" / "LATEST").is_file()


def test_smoke_variable_caps_steps_and_folders(unaligned_root, tmp_path, monkeypatch):
    from cyclegan.data.images import list_images

    monkeypatch.setenv(smoke.ENV, "1")
    cfg = TrainConfig(data=DataConfig(dataroot=str(unaligned_root)), run=RunConfig(max_steps=50))
    assert smoke.apply(cfg).run.max_steps == 1 and smoke.apply(cfg).model.ngf == smoke.SMOKE_FILTERS
    make_images(tmp_path / "many", 9)
    assert len(list_images(tmp_path / "many")) == smoke.SMOKE_IMAGES
    monkeypatch.setenv(smoke.ENV, "0")
    assert smoke.apply(cfg).run.max_steps == 50 and len(list_images(tmp_path / "many")) == 9
    monkeypatch.setenv(smoke.ENV, "yes")
    with pytest.raises(ConfigError, match="CYCLEGAN_SMOKE"):
        smoke.apply(cfg)


# ---------------------------------------------------------------- evaluate


def test_evaluate_run_table_is_the_one_the_docs_show():
    docs = (REPO / "docs" / "commands" / "evaluate.md").read_text()
    assert TABLE_HEADER in docs.splitlines()
    scores = {"fid": 61.25, "kid_mean": 0.0213, "kid_std": 0.0011, "cycle_l1": 0.1034, "n_fake": 120, "n_real": 140}
    table = results_table({"AtoB": scores, "BtoA": scores}).splitlines()
    assert table[0] == TABLE_HEADER and table[1].split() == ["AtoB", "61.25", "2.13", "+-", "0.11", "0.1034",
                                                             "120", "140"]


def test_evaluate_missing_fake_folder_names_the_option(tmp_path):
    make_images(tmp_path / "real", 3)
    out = _cli("evaluate", "--fake", str(tmp_path / "nope"), "--real", str(tmp_path / "real"))
    err = out.stderr.strip()
    assert out.returncode == 2 and len(err.splitlines()) == 1
    assert f"--fake {tmp_path / 'nope'} does not exist" in err and "trainA" not in err


def test_evaluate_hints_at_size_for_a_run_trained_small(tmp_path):
    make_images(tmp_path / "data" / "testA", 2, size=(256, 256))
    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(data=DataConfig(dataroot=str(tmp_path / "data"), load_size=72, crop_size=64)).save(run / "config.json")
    hint = size_hint(run, None, "test")
    assert "--size 72" in hint and "256x256" in hint and "3.6x" in hint
    TrainConfig(data=DataConfig(dataroot=str(tmp_path / "data"))).save(run / "config.json")
    assert size_hint(run, None, "test") is None  # the paper's 286 px: no hint at 256 px


@pytest.mark.skipif(not (SHARED_DATA / "facades").is_dir(), reason="needs ../shared/data/facades")
def test_labels_against_the_runs_direction_is_caught(tmp_path, monkeypatch):
    monkeypatch.setenv(smoke.ENV, "1")  # the check looks at a handful of images anyway
    run = tmp_path / "facades"
    run.mkdir()
    cfg = TrainConfig(model=ModelConfig(generator="resnet_6blocks"),
                      data=DataConfig(dataroot=str(SHARED_DATA / "facades"), dataset_mode="aligned", direction="BtoA"))
    cfg.save(run / "config.json")
    out = _cli("evaluate", str(run), "--labels", "B", env={smoke.ENV: "1"})
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert "--labels B" in err[0] and "not label maps" in err[0] and "pass --labels A" in err[0]
    right = _cli("evaluate", str(run), "--labels", "A", env={smoke.ENV: "1"})
    assert right.returncode == 2 and "no complete checkpoint" in right.stderr  # passed the check, found no weights


@pytest.mark.skipif(not (SHARED_DATA / "horse2zebra").is_dir(), reason="needs ../shared/data/horse2zebra")
def test_labels_from_photos_is_refused(tmp_path):
    from cyclegan.data.images import DatasetError
    from cyclegan.evaluate import paired_folder_scores

    for name in ("fake", "real"):
        make_images(tmp_path / name, 2, size=(32, 32))
    with pytest.raises(DatasetError, match="not label maps"):
        paired_folder_scores(tmp_path / "fake", tmp_path / "real", SHARED_DATA / "horse2zebra" / "testA")


# ---------------------------------------------------------------- report, study, docs, .gitignore


def test_report_open_without_a_browser_prints_the_path(unaligned_root, tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", str(unaligned_root), "--name", "t", "--checkpoints-dir", str(runs), "--max-steps", "1",
                 *TINY]) == 0
    env = {k: v for k, v in os.environ.items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PATH"] = str(tmp_path / "no-browsers-here")
    out = subprocess.run([sys.executable, "-m", "cyclegan", "report", str(runs / "t"), "--open"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert str(runs / "t" / "report.html") in out.stdout
    assert "no web browser found" in out.stderr and (runs / "t" / "report.html").resolve().as_uri() in out.stderr


def test_study_log_has_no_colour_codes_when_not_on_a_terminal(tmp_path):
    pytest.importorskip("flask")
    make_images(tmp_path / "real", 5, size=(16, 16))
    make_images(tmp_path / "fake", 5, size=(16, 16), seed=3)
    proc = subprocess.Popen([sys.executable, "-m", "cyclegan", "study", "--real", str(tmp_path / "real"), "--fake",
                             str(tmp_path / "fake"), "--db", str(tmp_path / "s.sqlite3"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+)", line).group(1).replace("localhost", "127.0.0.1")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "no-such-page", timeout=30)
        urllib.request.urlopen(url, timeout=30).read()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "no-such-page" in err and " 404 " in err
    assert "\x1b[" not in err


def test_docs_amp_wording_matches_help():
    docs = (REPO / "docs" / "options.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `--amp`"))
    assert "AVX512-BF16/AMX" in row and "CUDA only" not in row
    assert "AVX512-BF16/AMX" in _cli("train", "--help").stdout


def test_gitignore_covers_where_the_demo_writes():
    ignored = (REPO / ".gitignore").read_text().split()
    assert "/checkpoints/" in ignored and demo_config().run.checkpoints_dir == "./checkpoints"


def _default_sigint() -> None:
    # A child inherits an ignored SIGINT (some test runners and earlier tests leave it so), and
    # Python then never turns Ctrl-C into KeyboardInterrupt: give the server the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
