"""Build the built-in demo set (src/cyclegan/data/demo/horse2zebra) from horse2zebra.

The demo is a random subset of the horse2zebra release of the CycleGAN paper
(ImageNet classes "wild horse" and "zebra"), scaled from 256x256 to 96x96 so
that a model trains visibly within minutes on a CPU. Re-run to regenerate:

    python scripts/make_demo_data.py ../shared/data/horse2zebra
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image

COUNTS = {"trainA": 300, "trainB": 300, "testA": 20, "testB": 20}
SIZE = 96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="horse2zebra folder with trainA/trainB/testA/testB")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/cyclegan/data/demo/horse2zebra")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for split, count in COUNTS.items():
        files = sorted((args.source / split).glob("*.jpg"))
        chosen = sorted(rng.sample(files, count))
        out = args.out / split
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*.jpg"):
            old.unlink()
        for path in chosen:
            img = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.LANCZOS)
            img.save(out / path.name, quality=90)
        print(f"{split}: {count} images -> {out}")


if __name__ == "__main__":
    main()
