"""Images per second of translation with the paper's generator (ResNet-9, ngf 64, instance norm).

All paths run in one process on the same random images, so the ratio column
compares like with like:

  reference  written the way the authors' test.py works (--model test): batch 1, one
             forward per image, the input and the result each read back with .cpu() and
             turned into uint8 on the host (their util.tensor2im); PNG writing left out
  fp32       Translator.translate_tensor on batches of B, one readback per batch, each
             image turned into a PIL image (what `cyclegan translate` does before saving)
  amp        the same with bfloat16 autocast, where
             bfloat16 is native: CUDA, or a CPU with AVX512-BF16/AMX

Both use the same network, so the ratio measures the pipeline (batching, readback,
precision, memory format), not the architecture. Each timing: --warmup runs, then
the median of --repeats runs. The reference translates max(--batches) images per run.

    python benchmarks/infer_speed.py --sizes 256 512 --batches 1 16 --repeats 5 --json infer.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date
from typing import Callable

import numpy as np
import torch
from torch import nn

from cyclegan.config import ModelConfig
from cyclegan.data.images import to_pil
from cyclegan.nets import build_generator, size_multiple
from cyclegan.precision import cpu_has_bf16
from cyclegan.device import resolve_device
from cyclegan.translate import Translator


def median_seconds(run: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall time of `run`, which must end synchronised (every path here ends with a readback)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _tensor2im(t: torch.Tensor) -> np.ndarray:
    # The authors' util.tensor2im for a [-1, 1] batch of one.
    arr = t[0].cpu().float().numpy()
    return ((np.transpose(arr, (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)


def reference(net: nn.Module, images: torch.Tensor, device: torch.device) -> None:
    """One image at a time, as test.py's loop: set_input, test() under no_grad, save_images' conversions."""
    with torch.no_grad():
        for i in range(images.shape[0]):
            real = images[i:i + 1].to(device)
            fake = net(real)
            _tensor2im(real), _tensor2im(fake)


def batched(translator: Translator, images: torch.Tensor) -> None:
    for out in translator.translate_tensor(images).cpu():
        to_pil(out)


def measure(size: int, batches: list[int], warmup: int, repeats: int, device: torch.device) -> list[dict]:
    cfg = ModelConfig()  # the paper's generator: resnet_9blocks, ngf 64, instance norm
    torch.manual_seed(0)
    net = build_generator(cfg, 3, 3).to(device).eval()
    multiple = size_multiple(cfg.generator)
    paths = {"fp32": Translator(net, multiple, 3, device)}
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        paths["amp"] = Translator(net, multiple, 3, device, amp=True)
    images = torch.rand(max(batches), 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ref_seconds = median_seconds(lambda: reference(net, images, device), warmup, repeats)
    ref_rate = images.shape[0] / ref_seconds
    rows = [{"size": size, "path": "reference", "batch": 1, "images": images.shape[0],
             "sec_per_run": ref_seconds, "images_per_sec": ref_rate, "vs_reference": 1.0}]
    for name, translator in paths.items():
        for batch in batches:
            seconds = median_seconds(lambda: batched(translator, images[:batch]), warmup, repeats)
            rows.append({"size": size, "path": name, "batch": batch, "images": batch, "sec_per_run": seconds,
                         "images_per_sec": batch / seconds, "vs_reference": batch / seconds / ref_rate})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sides")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="batch sizes of the batched paths")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before each row")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, ...")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if min(args.sizes) < 1 or min(args.batches) < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("sizes, batches and repeats must be at least 1, warmup at least 0")
    device = resolve_device(args.device)
    results = [row for size in args.sizes for row in measure(size, args.batches, args.warmup, args.repeats, device)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# infer_speed {date.today()} {name} ({device}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print("| size | path | batch | s per run (median) | images/s | vs reference |")
    print("|---|---|---|---|---|---|")
    for r in results:
        batch = f"1 (x{r['images']})" if r["path"] == "reference" else str(r["batch"])
        print(f"| {r['size']} | {r['path']} | {batch} | {r['sec_per_run']:.4f} | {r['images_per_sec']:.2f} | "
              f"{r['vs_reference']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": str(date.today()), "device": name, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
