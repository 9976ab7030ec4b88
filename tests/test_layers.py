"""The layering the architecture promises (docs/architecture.md): inference loads no training
module, and only rundir.py spells the run directory's file names."""

import os
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_translate_loads_no_training_module():
    code = "import sys, cyclegan.translate; print([m for m in sys.modules if 'training' in m])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_only_rundir_spells_run_directory_file_names():
    names = ["config.json", "loss_log.csv", "eval_log.csv", "metrics.json", "LATEST", "state.pt", "dataset.json",
             "report.html", "best.json"]
    literal = re.compile(r"""["'](%s)["']""" % "|".join(re.escape(n) for n in names))
    offenders = []
    for path in (SRC / "cyclegan").rglob("*.py"):
        if path.name == "rundir.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []
