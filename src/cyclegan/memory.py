"""How much memory a whole-image translation needs, how much there is, and the tile that fits.

The estimate walks the generator's convs and takes its largest activation (channels x the
image area at that layer's scale, float32); a no-grad forward pass holds a few such maps at
once (the conv output, the norm's output, the padded copy of the next input). Measured on
the development CPU (peak RSS of a whole-image ResNet forward): 3.7x to 6.5x the largest
activation for ngf 4 to 64 and 512 to 2048 px, so PEAK_FACTOR = 7 errs on the side of tiling.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

PEAK_FACTOR = 7
# The exact tiler's passes over crops of a few sizes leave the allocator holding about three
# crops' worth (measured: peak RSS of ExactTiler on a 3000 px image, 1024 px tiles, ngf 4:
# 345 MB against 124 MB for one whole-crop forward pass), so a tile's budget is shared by 3.
TILE_FACTOR = 3
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    """'8G', '512M', '1.5G', '1000000' -> bytes (binary units); ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", text.upper())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a memory size: {text!r} (examples: 8G, 512M)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def human(n: float) -> str:
    """Bytes as '1.5 GiB' or '12 MiB'."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def available_bytes() -> int | None:
    """Memory this process can still use: MemAvailable, capped by a cgroup limit and by an address-space
    limit (ulimit -v) when set."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            room = int(limit) - used
            free = room if free is None else min(free, room)
    except (OSError, ValueError):
        pass
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:  # ulimit -v: address space, of which some is mapped already
            status = Path("/proc/self/status").read_text()
            mapped = int(status.split("VmSize:")[1].split()[0]) * 1024
            free = limit - mapped if free is None else min(free, limit - mapped)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return free


def image_bytes(channels: int, height: int, width: int) -> int:
    """Whole-image tensors a tiled pass still holds: the float input and output and the temporaries of
    converting the output to 8 bits, plus the decoded and encoded 8-bit images."""
    return 18 * channels * height * width


def largest_activation(net: nn.Module, height: int, width: int) -> int:
    """Elements of the largest feature map `net` makes from one height x width image."""
    scale, largest = 1.0, 0
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            scale *= module.stride[0]
            largest = max(largest, int(module.out_channels * (height / scale) * (width / scale)))
        elif isinstance(module, nn.ConvTranspose2d):
            scale /= module.stride[0]
            largest = max(largest, int(module.out_channels * (height / scale) * (width / scale)))
    return largest


def forward_bytes(net: nn.Module, batch: int, height: int, width: int) -> int:
    """Estimated peak bytes of a no-grad float32 forward pass of `batch` images."""
    return PEAK_FACTOR * 4 * batch * largest_activation(net, height, width)


def tile_for_budget(net: nn.Module, budget: int, halo: int, stride: int, batch: int = 1) -> int | None:
    """The largest tile (a multiple of `stride`, at least 16 px) whose crop (tile + 2 halo) fits in
    `budget`, or None when even the smallest does not."""
    tile = 16
    if TILE_FACTOR * forward_bytes(net, batch, tile + 2 * halo, tile + 2 * halo) > budget:
        return None
    while TILE_FACTOR * forward_bytes(net, batch, 2 * tile + 2 * halo, 2 * tile + 2 * halo) <= budget and tile < 2**16:
        tile *= 2
    return max(16, tile // stride * stride)
