"""Export one trained generator to ONNX or TorchScript, checked against PyTorch.

    cyclegan export checkpoints/h2z --direction AtoB --format onnx --output h2z_AtoB.onnx

    info = export_generator("checkpoints/h2z", "AtoB", "onnx", "h2z_AtoB.onnx")
    info["max_abs_diff"]      # worst |exported - PyTorch| over two input sizes

The exported model has one input and one output, both NCHW float32 in [-1, 1]
(pixel / 127.5 - 1, as `cyclegan.data.images.to_tensor` makes them); in ONNX
they are named "input" and "output", and batch, height and width are dynamic.

H and W must be multiples of the generator's size multiple (`size_multiple` in
the returned dict: 4 for the ResNet generators, 128 for unet_128, 256 for
unet_256). Other sizes are not rejected by the exported graph but give shifted
or wrongly sized outputs. Pad first and crop back, as `cyclegan translate`
does (`cyclegan.translate.pad_to_multiple`): reflect-pad the bottom and right
edges up to the next multiple, run the model, keep the top-left H x W.

ONNX export uses torch's TorchScript-based exporter (`torch.onnx.export(...,
dynamo=False)`), which needs only the `onnx` package; if that exporter is gone
from the installed torch and `onnxscript` is installed, the torch.export-based
one (`dynamo=True`) is used instead. Either way the written file is run with
onnxruntime (CPUExecutionProvider) on two inputs of different batch size and
shape and compared with the PyTorch generator; a difference above 1e-4 is an
error and no file is written. Without onnxruntime the file is written unverified.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .config import DIRECTIONS, ConfigError
from .methods import method_of
from .rundir import RunDir, RunDirError
from .translate import Translator

FORMATS = ("onnx", "torchscript", "safetensors")  # safetensors: + NAME.json describing it (exported.py)
TOLERANCE = 1e-4
ONNX_INSTALL = "pip install onnx onnxruntime"


class ExportError(RuntimeError):
    """The exporter failed, or the exported model does not reproduce the PyTorch generator."""


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def verification_shapes(channels: int, multiple: int) -> list[tuple[int, int, int, int]]:
    """Two NCHW shapes the export is checked at: (1, C, S, S) and (2, C, S, S + T), S and T multiples."""
    side = multiple * math.ceil(64 / multiple)
    extra = multiple * math.ceil(32 / multiple)
    return [(1, channels, side, side), (2, channels, side, side + extra)]


def _random_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) * 2 - 1


def _export_onnx(net: nn.Module, example: torch.Tensor, path: Path, opset: int) -> str:
    """Write `net` as ONNX with dynamic batch/height/width; return which exporter was used."""
    dims = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings():
            # The legacy exporter's deprecation notice and tracer chatter (e.g. instance norm's
            # channel check); correctness is checked below against PyTorch instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (example,), str(path), dynamo=False, opset_version=opset,
                input_names=["input"], output_names=["output"],
                dynamic_axes={"input": dims, "output": dims}, do_constant_folding=True,
            )
        return "torch.onnx.export(dynamo=False)"
    except Exception as err:  # noqa: BLE001 - fall back to the other exporter, or report this one
        legacy_error = err
    if not _has("onnxscript"):
        raise ExportError(
            f"ONNX export failed: {_first_line(legacy_error)} (installing onnxscript enables torch's other exporter)"
        ) from None
    dynamic = torch.export.Dim.DYNAMIC
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (example,), str(path), dynamo=True, opset_version=max(opset, 18),
                input_names=["input"], output_names=["output"], external_data=False,
                dynamic_shapes={"x": {0: dynamic, 2: dynamic, 3: dynamic}},
            )
    except Exception as err:  # noqa: BLE001 - one line for the command line
        raise ExportError(f"ONNX export failed: {_first_line(legacy_error)}; then with dynamo=True: {_first_line(err)}") from None
    return "torch.onnx.export(dynamo=True)"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _onnx_runner(path: Path) -> Callable[[torch.Tensor], np.ndarray] | None:
    if not _has("onnxruntime"):
        return None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["output"], {"input": x.numpy()})[0]


def _torchscript_runner(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
        loaded = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return loaded(x).numpy()

    return run


def _max_abs_diff(net: nn.Module, run: Callable[[torch.Tensor], np.ndarray], shapes) -> float:
    worst = 0.0
    for i, shape in enumerate(shapes):
        x = _random_input(shape, seed=1000 + i)
        with torch.no_grad():
            expected = net(x).numpy()
        got = run(x)
        if got.shape != expected.shape:
            raise ExportError(f"exported model gives shape {tuple(got.shape)} for input {shape}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max()))
    return worst


def _writable_output(output: Path) -> Path:
    """`output` checked before minutes of export: not a folder, its folder creatable and writable."""
    if output.is_dir():
        raise ExportError(f"--output {output} is a folder; pass a file name, e.g. {output / 'generator.onnx'}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create the folder of --output {output}: {err.strerror or err}") from None
    if not os.access(output.parent, os.W_OK):
        raise ExportError(f"cannot write --output {output}: its folder is not writable (read-only or no "
                          "permission); pass another path")
    return output


def export_generator(
    run_dir: str | Path,
    direction: str = "AtoB",
    fmt: str = "onnx",
    output: str | Path = "generator.onnx",
    opset: int = 17,
    verify: bool = True,
) -> dict:
    """Export the latest checkpoint's `direction` generator of `run_dir` to `output`.

    Returns {"format", "output", "direction", "size_multiple", "exporter", "input_shape" (the
    first verification/trace shape), "verified_shapes", "max_abs_diff"}; max_abs_diff is None when
    not verified (verify=False, or onnxruntime missing for ONNX), and verified_shapes is then [].
    Raises RunDirError (no such run / no checkpoint), ConfigError (bad format, direction or
    opset; onnx not installed) or ExportError (export failed, or outputs differ by more than 1e-4).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if direction not in DIRECTIONS:
        raise ConfigError(f"unknown direction {direction!r}; choose AtoB or BtoA")
    if fmt == "onnx":
        if opset < 11:
            raise ConfigError(f"--opset {opset} is too old: reflection padding needs opset 11 or newer")
        if not _has("onnx"):
            raise ConfigError(f"ONNX export needs the onnx package: {ONNX_INSTALL}")
    run = RunDir(run_dir)
    if not run.path.exists():
        raise RunDirError(f"{run.path} does not exist; pass the run directory written by `cyclegan train`")
    method = method_of(run.read_config())
    if not method.exportable:
        raise ExportError(f"{run.path} is a {method.title} run: it translates by an optimisation per image, "
                          "which ONNX and TorchScript cannot hold; use `cyclegan translate` instead")
    translator = Translator.from_run(run.path, direction, device="cpu")
    net = translator.generator.eval()
    shapes = verification_shapes(translator.in_channels, translator.multiple)
    if fmt == "safetensors":
        return export_safetensors(run_dir, net, direction, output, shapes, verify, translator.multiple)
    example = _random_input(shapes[0], seed=0)

    output = _writable_output(Path(output))
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        if fmt == "onnx":
            exporter = _export_onnx(net, example, tmp, opset)
            import onnx

            onnx.checker.check_model(str(tmp))
            run = _onnx_runner(tmp) if verify else None
        else:
            exporter = "torch.jit.trace"
            with warnings.catch_warnings(), torch.no_grad():
                # Tracer notes on instance norm's channel check, and torch.jit's deprecation notice.
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(net, example, check_trace=False)
                torch.jit.save(traced, str(tmp))
            run = _torchscript_runner(tmp) if verify else None
        diff = _max_abs_diff(net, run, shapes) if run is not None else None
        if diff is not None and not diff <= TOLERANCE:
            raise ExportError(
                f"exported {fmt} model differs from PyTorch by up to {diff:.3g} (> {TOLERANCE:g}); nothing was written"
            )
        os.replace(tmp, output)
    except OSError as err:
        raise ExportError(f"could not write {output}: {err.strerror or err}; nothing was written") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "format": fmt,
        "output": output,
        "direction": direction,
        "size_multiple": translator.multiple,
        "exporter": exporter,
        "input_shape": shapes[0],
        "verified_shapes": shapes if diff is not None else [],
        "max_abs_diff": diff,
    }


def export_safetensors(run_dir: Path, net: nn.Module, direction: str, output: str | Path, shapes, verify: bool,
                       multiple: int) -> dict:
    """The generator as OUTPUT.safetensors + OUTPUT.json (its architecture), reloaded and compared."""
    from .exported import load_exported, write_exported

    output = write_exported(net, RunDir(run_dir).read_config().model, direction, Path(output))
    diff = None
    if verify:
        loaded = load_exported(output)[0]
        diff = _max_abs_diff(net, lambda x: loaded(x).detach().numpy(), shapes)
    return {"format": "safetensors", "output": output, "direction": direction, "size_multiple": multiple,
            "exporter": "safetensors + json", "input_shape": shapes[0], "verified_shapes": shapes if verify else [],
            "max_abs_diff": diff}
