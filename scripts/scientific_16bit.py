"""A short real 16-bit MR <-> CT run end to end, for docs/scientific_images.md.

Data: the real scans bundled with pydicom (`pip install pydicom`, `pydicom.data.get_testdata_file`):
  domain A (MR, 16-bit PNG): MR_small.dcm (64x64), examples_overlay.dcm (300x484, 12-bit)
  domain B (CT, int16 TIFF): CT_small.dcm (128x128), 693_J2KI.dcm and J2K_pixelrep_mismatch.dcm (512x512,
  JPEG 2000 inside the DICOM, decoded by Pillow's OpenJPEG)
Then `cyclegan train` with percentile intensity mapping, `cyclegan translate` both ways, and a check of the
written files' dtype. Writes docs/scientific_16bit.json and docs/images/scientific_16bit_*.png.

    OMP_NUM_THREADS=1 python scripts/scientific_16bit.py --out /tmp/sci16 --steps 150
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cyclegan.rundir import RunDir
import numpy as np
import pydicom
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file

DOCS = Path(__file__).resolve().parents[1] / "docs"
MR = ["MR_small.dcm", "examples_overlay.dcm"]
CT = ["CT_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm"]


def make_dataset(root: Path) -> dict:
    (root / "trainA").mkdir(parents=True, exist_ok=True)
    (root / "trainB").mkdir(parents=True, exist_ok=True)
    facts = {}
    for name in MR:
        arr = pydicom.dcmread(get_testdata_file(name)).pixel_array
        assert arr.min() >= 0 and arr.max() < 65536
        Image.fromarray(arr.astype(np.uint16)).save(root / "trainA" / f"{Path(name).stem}.png")
        facts[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype), "min": int(arr.min()), "max": int(arr.max())}
    for name in CT:
        arr = pydicom.dcmread(get_testdata_file(name)).pixel_array.astype(np.int16)
        tifffile.imwrite(root / "trainB" / f"{Path(name).stem}.tif", arr)
        facts[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype), "min": int(arr.min()), "max": int(arr.max())}
    return facts


def run(cmd: list[str]) -> float:
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                platform.processor())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/sci16"))
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    data = args.out / "mrct"
    facts = make_dataset(data)
    cli = [sys.executable, "-m", "cyclegan"]
    train_cmd = ["train", str(data), "--name", "mr2ct", "--checkpoints-dir", str(args.out / "runs"),
                 "--load-size", "72", "--crop-size", "64", "--max-steps", str(args.steps),
                 "--generator", "resnet_6blocks", "--ngf", "16", "--ndf", "16",  # small: a shared 2-core CPU
                 "--intensity-a", "percentile", "--intensity-b", "percentile",
                 "--sample-freq", str(args.steps), "--print-freq", "50", "--num-workers", "0", "--no-progress"]
    train_s = run(cli + train_cmd)
    run_dir = args.out / "runs" / "mr2ct"
    to_ct = ["translate", str(run_dir), str(data / "trainA"), "--output-dir", str(args.out / "ct"), "--no-progress"]
    to_mr = ["translate", str(run_dir), str(data / "trainB"), "--direction", "BtoA", "--output-dir",
             str(args.out / "mr"), "--no-progress"]
    translate_s = run(cli + to_ct) + run(cli + to_mr)
    outputs = {}
    for path in sorted((args.out / "ct").iterdir()) + sorted((args.out / "mr").iterdir()):
        arr = tifffile.imread(path) if path.suffix == ".tif" else np.asarray(Image.open(path))
        outputs[f"{path.parent.name}/{path.name}"] = {"dtype": str(arr.dtype), "shape": list(arr.shape),
                                                     "min": int(arr.min()), "max": int(arr.max()),
                                                     "distinct_values": int(len(np.unique(arr)))}
    config = json.loads(RunDir(run_dir).config_file.read_text())
    grid = RunDir(run_dir).sample_files()[-1][1]
    shutil.copy(grid, DOCS / "images" / "scientific_16bit_samples.png")
    summary = {
        "command": "cyclegan " + " ".join(train_cmd).replace(str(args.out), "OUT"),
        "steps": args.steps, "train_seconds": round(train_s, 1), "translate_seconds": round(translate_s, 1),
        "cpu": cpu_model(), "cpus": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "inputs": facts, "outputs": outputs,
        "stored_config": {k: config["data"][k] for k in ("dtype_a", "dtype_b", "intensity_a", "intensity_b",
                                                         "intensity_range_a", "intensity_range_b")}
        | {"input_nc": config["model"]["input_nc"], "output_nc": config["model"]["output_nc"]},
    }
    (DOCS / "scientific_16bit.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
