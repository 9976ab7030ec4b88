"""Where bfloat16 autocast (`--amp`) pays, and the one message for where it does not.

On CUDA, the tensor cores of GPUs with native bfloat16 (compute capability 8.0 and newer:
A100, H100, RTX 30xx and later); on a CPU, the AVX512-BF16 / AMX instructions that oneDNN
uses for bfloat16 convolutions (the training step at 128-256 px, against float32 in the same run:
2.5-2.9x on a 2-core Intel Xeon with AMX, about 1.4-1.6x on a 2-core AMD EPYC with
AVX512-BF16 and no AMX; docs/benchmarks.md). Elsewhere bfloat16 is emulated, slower than
float32 and less accurate, so it is refused up front.
"""

from __future__ import annotations

import torch

from .config import ConfigError

NATIVE_BF16_CAPABILITY = (8, 0)  # Ampere; older GPUs emulate bfloat16 in float32 units


def cpu_has_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cuda_has_bf16(device: torch.device) -> bool:
    return tuple(torch.cuda.get_device_capability(device)) >= NATIVE_BF16_CAPABILITY


def check_amp(device: torch.device, option: str = "--amp") -> None:
    """Raise ConfigError unless bfloat16 autocast runs natively on `device`."""
    if device.type == "cuda":
        if cuda_has_bf16(device):
            return
        major, minor = torch.cuda.get_device_capability(device)
        where = (f"GPU {device} (compute capability {major}.{minor}) has no native bfloat16 "
                 f"(needs {NATIVE_BF16_CAPABILITY[0]}.{NATIVE_BF16_CAPABILITY[1]} or newer)")
    elif device.type == "cpu":
        if cpu_has_bf16():
            return
        where = "this CPU has no bfloat16 instructions (AVX512-BF16/AMX)"
    else:
        where = f"device {device}"
    raise ConfigError(f"{option} (bfloat16 autocast) needs a CUDA GPU or a CPU with native bfloat16; {where} "
                      f"would run it slower than float32: drop {option}")

