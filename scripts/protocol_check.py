"""Every named FID protocol on real images: the real testA horses standing in for translations into
the zebra domain (and the real testB zebras for the horse domain), so each definition's choice of
images and resize can be seen in numbers before any model is involved.

    PYTHONPATH=src python scripts/protocol_check.py ../shared/data/horse2zebra --json docs/protocol_check.json

Writes a JSON record per protocol and direction and prints a Markdown table for
docs/commands/evaluate.md. Takes minutes of Inception on a CPU (about 3000 images); the real
sets' features are cached (default ~/.cache/cyclegan/inception_features).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

from cyclegan.atomic import write_text_atomic
from cyclegan.data.images import list_images
from cyclegan.evaluate import default_cache_dir
from cyclegan.metrics.protocols import PROTOCOLS, real_features, real_files_for, scores_from_features


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="horse2zebra folder with trainA/trainB/testA/testB")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    results: dict = {"cpu": cpu_model(), "root": str(args.root), "protocols": {}}
    start = time.perf_counter()
    for name, protocol in PROTOCOLS.items():
        results["protocols"][name] = {}
        for direction, source, target in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
            sources = list_images(args.root / f"testA" if source == "A" else args.root / "testB")
            # the source images' features, cached like a real set (they are real images here)
            feats = real_features(sources, protocol.resize, args.cache_dir, device=args.device)
            fake = feats[protocol.fake_indices(len(sources))]
            real = real_features(real_files_for(protocol, args.root, target), protocol.resize, args.cache_dir,
                                 device=args.device)
            scores = {**scores_from_features(fake, real), "protocol": name}
            results["protocols"][name][direction] = scores
            print(f"{name:8s} {direction}: FID {scores['fid']:.2f}  KID {scores['kid_mean']:.4f} +- "
                  f"{scores['kid_std']:.4f}  ({scores['n_fake']} vs {scores['n_real']})", flush=True)
    results["seconds"] = round(time.perf_counter() - start, 1)
    print("\n| protocol | real testA as 'zebras': FID | KID | real testB as 'horses': FID | KID | images |")
    print("|---|---|---|---|---|---|")
    for name, r in results["protocols"].items():
        a, b = r["AtoB"], r["BtoA"]
        print(f"| {name} | {a['fid']:.1f} | {a['kid_mean']:.4f} +- {a['kid_std']:.4f} | {b['fid']:.1f} | "
              f"{b['kid_mean']:.4f} +- {b['kid_std']:.4f} | {a['n_fake']} vs {a['n_real']}; {b['n_fake']} vs {b['n_real']} |")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
