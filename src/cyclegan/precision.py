"""Where bfloat16 autocast (`--amp`) pays, and the one message for where it does not.

On CUDA, tensor cores; on a CPU, the AVX512-BF16 / AMX instructions that oneDNN uses for
bfloat16 convolutions (the training step at 128-256 px, against float32 in the same run:
2.5-2.9x on a 2-core Intel Xeon with AMX, about 1.4-1.6x on a 2-core AMD EPYC with
AVX512-BF16 and no AMX; docs/benchmarks.md). Elsewhere bfloat16 is emulated, slower than
float32 and less accurate, so it is refused up front.
"""

from __future__ import annotations

import torch

from .config import ConfigError


def cpu_has_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_amp(device: torch.device, option: str = "--amp") -> None:
    """Raise ConfigError unless bfloat16 autocast runs natively on `device`."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        return
    where = "this CPU has no bfloat16 instructions (AVX512-BF16/AMX)" if device.type == "cpu" else f"device {device}"
    raise ConfigError(f"{option} (bfloat16 autocast) needs a CUDA GPU or a CPU with native bfloat16; {where} "
                      f"would run it slower than float32: drop {option}")


def channels_last_pays(device: torch.device) -> bool:
    """channels_last feeds tensor cores; on CPU it measured slower for these networks."""
    return device.type == "cuda"
