"""Training items per second from a real dataset, with and without the decoded-image cache.

Both read the same items (the first --items of epoch 1's plan) from the same folders
in one process (no worker processes), so the ratio is what the cache saves per item:

  files    every item decodes its two files and resizes them (what the authors' loader
           does, and ours with --cache-images off)
  cached   the decoded, resized images are kept in memory (--cache-images auto/on);
           items only crop, flip and turn into tensors. The one-off fill is timed apart.

A GPU step of the paper's model takes a few tens of milliseconds, so a loader that needs
more than that per item per worker keeps the GPU waiting.

    python benchmarks/load_speed.py ../shared/data/horse2zebra --items 400 --json load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date

import torch

from cyclegan.config import DataConfig
from cyclegan.data import PairSampler, UnalignedDataset


def items_per_second(dataset: UnalignedDataset, items: list) -> float:
    start = time.perf_counter()
    for item in items:
        dataset[item]
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataroot", help="unaligned dataset folder (trainA, trainB)")
    parser.add_argument("--load-size", type=int, default=286)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    cfg = DataConfig(dataroot=args.dataroot, load_size=args.load_size, crop_size=args.crop_size)
    files = UnalignedDataset(args.dataroot, cfg, 3, 3)
    items = PairSampler(files.len_a, files.len_b, seed=0).plan(1)[: args.items]
    cached = UnalignedDataset(args.dataroot, cfg, 3, 3)
    start = time.perf_counter()
    cached.preload()
    fill_s = time.perf_counter() - start

    items_per_second(files, items[:20])  # warm the page cache so both read files from memory
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread",
        "dataset": args.dataroot, "load_size": args.load_size, "crop_size": args.crop_size, "items": len(items),
        "files_per_s": items_per_second(files, items),
        "cached_per_s": items_per_second(cached, items),
        "fill_s": fill_s, "images": files.len_a + files.len_b, "cache_mib": cached.cache_bytes() / 2**20,
    }
    result["ratio"] = result["cached_per_s"] / result["files_per_s"]
    print(f"{'loader':<8} {'items/s':>9}\nfiles    {result['files_per_s']:9.1f}\n"
          f"cached   {result['cached_per_s']:9.1f}   x{result['ratio']:.1f}\n"
          f"cache fill: {result['images']} images in {fill_s:.1f} s, {result['cache_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
