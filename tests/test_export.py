import argparse

import numpy as np
import pytest
import torch

from cyclegan.config import ConfigError
from cyclegan.cli import _cmd_export, build_parser
from cyclegan.export import ExportError, export_generator, verification_shapes
from cyclegan.rundir import CheckpointError
from cyclegan.training.loop import train
from cyclegan.translate import Translator

from conftest import make_images, tiny_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    # One tiny trained run for the whole file (module scope: training is the slow part);
    # the same data as the unaligned_root fixture, which is function-scoped.
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    make_images(data / "trainA", 3, seed=1)
    make_images(data / "trainB", 3, seed=2)
    return train(tiny_config(data, root / "runs", max_steps=1))


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def _eager(run_dir, direction, x):
    with torch.no_grad():
        return Translator.from_run(run_dir, direction, device="cpu").generator(x).numpy()


def _ort_session(path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnx onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_onnx_export_matches_pytorch_at_any_batch_and_size(run_dir, tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx onnxruntime")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnx onnxruntime")
    import onnx

    info = export_generator(run_dir, "AtoB", "onnx", tmp_path / "sub" / "ab.onnx")
    assert info["format"] == "onnx" and info["output"] == tmp_path / "sub" / "ab.onnx"
    assert info["size_multiple"] == 4 and info["input_shape"] == (1, 3, 64, 64)
    assert info["verified_shapes"] == [(1, 3, 64, 64), (2, 3, 64, 96)]
    assert info["max_abs_diff"] is not None and info["max_abs_diff"] < 1e-4
    assert not list((tmp_path / "sub").glob(".*tmp"))  # temporary file replaced

    model = onnx.load(str(info["output"]))
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert [model.graph.input[0].name, model.graph.output[0].name] == ["input", "output"]
    assert dims[0] and dims[2] and dims[3] and not dims[1]  # batch, H, W symbolic; channels fixed

    session = _ort_session(info["output"])
    for shape in [(3, 3, 20, 36), (1, 3, 8, 12)]:  # sizes other than the verified ones
        x = torch.rand(shape) * 2 - 1
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == shape
        assert np.abs(got - _eager(run_dir, "AtoB", x)).max() < 1e-4


def test_btoa_exports_the_other_generator(run_dir, tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx onnxruntime")
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnx onnxruntime")
    ab = export_generator(run_dir, "AtoB", "onnx", tmp_path / "ab.onnx", verify=False)
    ba = export_generator(run_dir, "BtoA", "onnx", tmp_path / "ba.onnx")
    assert ab["max_abs_diff"] is None and ab["verified_shapes"] == []
    assert ba["max_abs_diff"] < 1e-4
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out_ab = _ort_session(ab["output"]).run(None, {"input": x.numpy()})[0]
    out_ba = _ort_session(ba["output"]).run(None, {"input": x.numpy()})[0]
    assert np.abs(out_ab - out_ba).max() > 1e-3
    assert np.abs(out_ba - _eager(run_dir, "BtoA", x)).max() < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_round_trip(run_dir, tmp_path):
    info = export_generator(run_dir, "BtoA", "torchscript", tmp_path / "ba.pt")
    assert info["format"] == "torchscript" and info["max_abs_diff"] < 1e-4
    loaded = torch.jit.load(str(info["output"]))
    x = torch.rand(2, 3, 12, 28) * 2 - 1
    with torch.no_grad():
        got = loaded(x).numpy()
    assert got.shape == (2, 3, 12, 28)
    assert np.abs(got - _eager(run_dir, "BtoA", x)).max() < 1e-4


def test_command_prints_path_and_difference(run_dir, tmp_path, capsys):
    out = tmp_path / "cli.pt"
    args = _parser().parse_args(["export", str(run_dir), "--direction", "BtoA", "--format", "torchscript",
                                 "--output", str(out)])
    assert args.opset == 17 and args.no_verify is False
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "max abs difference vs PyTorch:" in printed and out.is_file()


def test_command_no_verify(run_dir, tmp_path, capsys):
    out = tmp_path / "nv.pt"
    args = argparse.Namespace(run=run_dir, direction="AtoB", format="torchscript", output=out, opset=17, no_verify=True)
    assert _cmd_export(args) == 0
    assert "not checked (--no-verify)" in capsys.readouterr().out


def test_help_shows_defaults():
    text = _parser()._subparsers._group_actions[0].choices["export"].format_help()
    assert "(default: onnx)" in text and "(default: 17)" in text and "(default: AtoB)" in text


def test_parser_rejects_unknown_format(tmp_path):
    with pytest.raises(SystemExit):
        _parser().parse_args(["export", str(tmp_path), "--format", "tflite", "--output", "x"])


def test_errors_are_one_line(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_generator(run_dir, fmt="tflite", output=tmp_path / "x")
    with pytest.raises(ConfigError, match="direction"):
        export_generator(run_dir, direction="AtoC", fmt="torchscript", output=tmp_path / "x")
    with pytest.raises(CheckpointError, match="does not exist"):
        export_generator(tmp_path / "nope", fmt="torchscript", output=tmp_path / "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="not a run directory"):
        export_generator(empty, fmt="torchscript", output=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_onnx_names_the_install_line(run_dir, tmp_path, monkeypatch):
    import cyclegan.export as export

    monkeypatch.setattr(export, "_has", lambda name: name != "onnx")
    with pytest.raises(ConfigError, match="pip install onnx onnxruntime"):
        export_generator(run_dir, fmt="onnx", output=tmp_path / "x.onnx")


def test_opset_too_old(run_dir, tmp_path):
    with pytest.raises(ConfigError, match="opset 11"):
        export_generator(run_dir, fmt="onnx", output=tmp_path / "x.onnx", opset=9)


def test_mismatch_is_an_error_and_writes_nothing(run_dir, tmp_path, monkeypatch):
    import cyclegan.export as export

    real = export._torchscript_runner
    monkeypatch.setattr(export, "_torchscript_runner", lambda path: lambda x: real(path)(x) + 1e-3)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_generator(run_dir, fmt="torchscript", output=tmp_path / "bad.pt")
    assert not list(tmp_path.iterdir())


def test_without_onnxruntime_export_is_unverified(run_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx", reason="onnx not installed: pip install onnx onnxruntime")
    import cyclegan.export as export

    monkeypatch.setattr(export, "_has", lambda name: name != "onnxruntime")
    args = argparse.Namespace(run=run_dir, direction="AtoB", format="onnx", output=tmp_path / "m.onnx",
                              opset=17, no_verify=False)
    assert _cmd_export(args) == 0
    assert (tmp_path / "m.onnx").is_file()
    assert "onnxruntime is not installed" in capsys.readouterr().out


def test_verification_shapes_respect_size_multiple():
    assert verification_shapes(3, 4) == [(1, 3, 64, 64), (2, 3, 64, 96)]
    assert verification_shapes(1, 256) == [(1, 1, 256, 256), (2, 1, 256, 512)]
    for shape in verification_shapes(3, 128):
        assert shape[2] % 128 == 0 and shape[3] % 128 == 0
