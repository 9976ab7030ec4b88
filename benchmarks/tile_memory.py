"""Whole-image vs exactly tiled translation of one large real photo: time, peak memory, difference.

Each mode runs in its own fresh subprocess, so peak RSS (ru_maxrss) is that mode's own. The
photo is a real horse2zebra test image upscaled (bicubic) to --width x --height. The generator
is a ResNet with random weights (--ngf, --blocks), the same network in both modes; the tiled
output is compared with the whole-image output in 8-bit levels.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tile_memory.py --width 8000 --height 6000 \\
        --ngf 4 --blocks 1 --tile 1024 --json docs/tile_memory.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "horse2zebra" / "testA" / "n02381460_120.jpg"


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def _child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from cyclegan.data.images import to_tensor
    from cyclegan.nets import ResnetGenerator
    from cyclegan.translate import Translator

    Image.MAX_IMAGE_PIXELS = None
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=args.ngf, n_blocks=args.blocks).eval()
    translator = Translator(net, 4, 3, torch.device("cpu"))
    x = to_tensor(Image.open(PHOTO).convert("RGB").resize((args.width, args.height), Image.BICUBIC)).unsqueeze(0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = translator.translate_tensor(x, tile=args.tile if args.mode == "tiled" else None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    levels = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].numpy()
    np.save(args.save, levels)
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "rss_before_bytes": base * 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=8000)
    p.add_argument("--height", type=int, default=6000)
    p.add_argument("--ngf", type=int, default=4)
    p.add_argument("--blocks", type=int, default=1)
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--mode", choices=["whole", "tiled"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode is not None:
        _child(args)
        return
    import numpy as np

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("whole", "tiled"):
            cmd = [sys.executable, __file__, "--mode", mode, "--save", f"{tmp}/{mode}.npy", "--width", str(args.width),
                   "--height", str(args.height), "--ngf", str(args.ngf), "--blocks", str(args.blocks),
                   "--tile", str(args.tile)]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                results[mode] = {"error": run.stderr.strip().splitlines()[-1]}
                continue
            results[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            print(mode, results[mode], flush=True)
        if all("seconds" in r for r in results.values()):
            diff = np.abs(np.load(f"{tmp}/whole.npy").astype(int) - np.load(f"{tmp}/tiled.npy").astype(int))
            results["max_level_difference"] = int(diff.max())
            results["pixels_differing"] = int((diff > 0).sum())
            results["time_ratio_tiled_over_whole"] = results["tiled"]["seconds"] / results["whole"]["seconds"]
            results["peak_ratio_tiled_over_whole"] = results["tiled"]["peak_rss_bytes"] / results["whole"]["peak_rss_bytes"]
    results["setup"] = {"image": f"{PHOTO.name} upscaled to {args.width}x{args.height}", "ngf": args.ngf,
                        "blocks": args.blocks, "tile": args.tile, "cpu": _cpu_model(), "torch": __import__("torch").__version__,
                        "threads": __import__("torch").get_num_threads(),
                        "note": "shared machine (2 cores, several engineers working); times vary run to run"}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
