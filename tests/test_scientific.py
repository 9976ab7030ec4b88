"""Scientific images: 16-bit PNG, TIFF (integer, float, N channels), intensity mappings,
and translate writing the depth back.

The 16-bit images are real scans bundled with pydicom (pip install pydicom; its
`pydicom.data.get_testdata_file`): MR_small.dcm (64x64 MR, 16-bit, values 127..2145),
CT_small.dcm (128x128 CT, int16, 128..2191) and examples_overlay.dcm (300x484 MR,
uint16 12-bit, 0..1123). They are written here as a 16-bit PNG or an int16 TIFF.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA, tiny_config
from cyclegan.cli import main
from cyclegan.config import ConfigError, DataConfig, TrainConfig
from cyclegan.data import UnalignedDataset
from cyclegan.data.formats import domain_format, resolve_formats
from cyclegan.data.images import DatasetError, ImageLoadError
from cyclegan.data.native import (
    DomainFormat, encode_image, image_tensor, load_planes, probe, read_image, tensor_array,
)

pydicom = pytest.importorskip("pydicom")
tifffile = pytest.importorskip("tifffile")


def dicom(name: str) -> np.ndarray:
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file(name)).pixel_array


@pytest.fixture(scope="module")
def mrct(tmp_path_factory) -> Path:
    """trainA: real MR slices as 16-bit PNGs; trainB: a real CT slice as int16 TIFFs (and a flipped copy)."""
    root = tmp_path_factory.mktemp("mrct")
    (root / "trainA").mkdir()
    (root / "trainB").mkdir()
    Image.fromarray(dicom("MR_small.dcm").astype(np.uint16)).save(root / "trainA" / "mr_small.png")
    Image.fromarray(dicom("examples_overlay.dcm")).save(root / "trainA" / "mr_overlay.png")
    ct = dicom("CT_small.dcm")
    tifffile.imwrite(root / "trainB" / "ct_small.tif", ct)
    tifffile.imwrite(root / "trainB" / "ct_small_flipped.tif", ct[:, ::-1].copy())
    return root


def test_real_16bit_files_are_detected(mrct):
    png = probe(mrct / "trainA" / "mr_small.png")
    assert (png.channels, png.dtype, png.classic) == (1, "uint16", False)
    tif = probe(mrct / "trainB" / "ct_small.tif")
    assert (tif.channels, tif.dtype, tif.classic, tif.tiff) == (1, "int16", False, True)
    jpg = probe(SHARED_DATA / "horse2zebra" / "trainA" / sorted((SHARED_DATA / "horse2zebra" / "trainA").iterdir())[0].name)
    assert jpg.classic and jpg.dtype == "uint8"


def test_16bit_values_survive_without_rounding_through_8_bits(mrct, tmp_path):
    """Read -> tensor -> written back: every 16-bit value of the real MR comes back exactly."""
    fmt = DomainFormat(1, "uint16", 0.0, 65535.0, classic=False)
    src = mrct / "trainA" / "mr_small.png"
    original = np.asarray(Image.open(src))
    t = image_tensor(read_image(src, fmt), fmt)
    out = tmp_path / "back.png"
    encode_image(t, (64, 64), fmt, out)
    back = Image.open(out)
    assert back.mode.startswith("I;16")
    np.testing.assert_array_equal(np.asarray(back), original)
    # an 8-bit trip would merge neighbouring levels: the MR has far more than 256 distinct values
    assert len(np.unique(original)) > 256 and len(np.unique(np.asarray(back))) == len(np.unique(original))


def test_float_and_n_channel_tiff_round_trip(tmp_path):
    rgb = np.asarray(Image.open(sorted((SHARED_DATA / "horse2zebra" / "trainA").iterdir())[0]), dtype=np.float32) / 255
    four = np.dstack([rgb, rgb.mean(axis=2)]).astype(np.float32)  # 4 bands, float32 in [0, 1]
    path = tmp_path / "bands.tif"
    tifffile.imwrite(path, four, photometric="minisblack", planarconfig="contig")
    kind = probe(path)
    assert (kind.channels, kind.dtype, kind.classic) == (4, "float32", False)
    fmt = DomainFormat(4, "float32", 0.0, 1.0, classic=False)
    t = image_tensor(read_image(path, fmt), fmt)
    assert t.shape == (4, *four.shape[:2])
    out = tmp_path / "out.tif"
    encode_image(t, (four.shape[1], four.shape[0]), fmt, out)
    back = tifffile.imread(out)
    assert back.dtype == np.float32 and back.shape == four.shape
    np.testing.assert_allclose(back, four, atol=1e-6)


@pytest.mark.parametrize("how", [{"photometric": "minisblack", "planarconfig": "separate"}, {"imagej": True}])
def test_channels_first_tiff_is_read_as_channels(tmp_path, how):
    mr = dicom("MR_small.dcm").astype(np.uint16)
    bands = np.stack([mr + i for i in range(5)])  # (5, H, W)
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, bands, **how)
    assert probe(path).channels == 5
    planes = load_planes(path, DomainFormat(5, "uint16", 0, 65535, classic=False))
    np.testing.assert_array_equal(planes.array(), bands.astype(np.float32))


@pytest.mark.parametrize("pages", ["two images", "unlabelled pages"])
def test_multipage_tiff_is_refused_in_one_line(tmp_path, pages):
    path = tmp_path / "stack.tif"
    mr = dicom("MR_small.dcm")
    if pages == "two images":
        with tifffile.TiffWriter(path) as tif:
            tif.write(mr)
            tif.write(mr)
    else:
        tifffile.imwrite(path, np.stack([mr, mr]), photometric="minisblack")  # pages: slices or bands?
    with pytest.raises(ImageLoadError, match=r"stack.tif: a multi-page TIFF") as err:
        probe(path)
    assert "\n" not in str(err.value)


def _png16_rgb(path: Path, arr: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_colour_png_is_refused_not_truncated(tmp_path):
    path = tmp_path / "rgb16.png"
    _png16_rgb(path, np.stack([dicom("MR_small.dcm").astype(np.uint16)] * 3, axis=2))
    assert Image.open(path).mode == "RGB"  # what Pillow would silently do: 8 bits
    with pytest.raises(ImageLoadError, match="rgb16.png: a 16-bit colour PNG.*TIFF"):
        probe(path)


def test_folder_mixing_depths_is_refused_in_one_line(mrct, tmp_path):
    root = tmp_path / "mixed"
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    Image.fromarray(dicom("MR_small.dcm").astype(np.uint16)).save(root / "trainA" / "a16.png")
    Image.fromarray((dicom("MR_small.dcm") // 16).astype(np.uint8)).save(root / "trainA" / "b8.png")
    tifffile.imwrite(root / "trainB" / "ct.tif", dicom("CT_small.dcm"))
    cfg = TrainConfig(data=DataConfig(dataroot=str(root)))
    with pytest.raises(DatasetError, match=r"trainA mixes image kinds: a16.png is 1-channel uint16, b8.png is 8-bit") as err:
        resolve_formats(cfg, root)
    assert "\n" not in str(err.value)


def test_formats_detected_and_percentiles_computed_once(mrct):
    cfg = TrainConfig(data=DataConfig(dataroot=str(mrct), intensity_a="percentile", intensity_b="percentile"))
    resolved, notes = resolve_formats(cfg, mrct)
    assert (resolved.model.input_nc, resolved.model.output_nc) == (1, 1)
    assert (resolved.data.dtype_a, resolved.data.dtype_b) == ("uint16", "int16")
    ct = dicom("CT_small.dcm").astype(np.float64)
    expected = np.percentile(np.concatenate([ct.ravel(), ct[:, ::-1].ravel()]), (0.5, 99.5))
    np.testing.assert_allclose(resolved.data.intensity_range_b, expected)
    assert len(notes) == 2 and "int16" in notes[1]
    # stored in the run's config and read back by translate as the same mapping
    again = TrainConfig.from_dict(json.loads(json.dumps(resolved.to_dict())))
    assert domain_format(again, "B") == domain_format(resolved, "B")
    assert domain_format(again, "B").low == pytest.approx(expected[0])


def test_fixed_intensity_range_from_the_command_line(mrct):
    import argparse

    from cyclegan.config import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--intensity-range-b", "-1024", "3071"]))
    assert cfg.data.intensity_range_b == (-1024.0, 3071.0)
    resolved, _ = resolve_formats(cfg, mrct)
    assert resolved.data.intensity_b == "range"
    fmt = domain_format(resolved, "B")
    assert (fmt.low, fmt.high, fmt.dtype) == (-1024.0, 3071.0, "int16")
    with pytest.raises(ConfigError, match="data.intensity_range_a MAX must be above MIN"):
        TrainConfig(data=DataConfig(intensity_range_a=(5.0, 5.0))).validate()


def test_dtype_mapping_covers_the_whole_type_range(mrct):
    cfg, _ = resolve_formats(TrainConfig(data=DataConfig(dataroot=str(mrct))), mrct)
    fmt = domain_format(cfg, "A")
    assert (fmt.low, fmt.high) == (0.0, 65535.0)
    t = image_tensor(read_image(mrct / "trainA" / "mr_small.png", fmt), fmt)
    mr = dicom("MR_small.dcm").astype(np.float64)
    np.testing.assert_allclose(t[0].numpy(), mr / 65535 * 2 - 1, atol=1e-6)


def test_8bit_rgb_data_keep_their_config_and_items(unaligned_root):
    cfg = TrainConfig(data=DataConfig(dataroot=str(unaligned_root), load_size=36, crop_size=32))
    resolved, notes = resolve_formats(cfg, unaligned_root)
    assert resolved == cfg and notes == []  # nothing added to an 8-bit run's config
    assert domain_format(resolved, "A") == DomainFormat(3)
    plain = UnalignedDataset(unaligned_root, cfg.data, 3, 3)
    via = UnalignedDataset(unaligned_root, cfg.data, 3, 3, formats=(domain_format(cfg, "A"), domain_format(cfg, "B")))
    for item in [(0, 1, 5), (3, 2, 9)]:
        assert torch.equal(plain[item]["a"], via[item]["a"]) and torch.equal(plain[item]["b"], via[item]["b"])


def test_percentile_mapping_of_8bit_images_reads_them_as_before(unaligned_root):
    cfg = TrainConfig(data=DataConfig(dataroot=str(unaligned_root), intensity_a="percentile",
                                      load_size=36, crop_size=32, flip=False))
    resolved, _ = resolve_formats(cfg, unaligned_root)
    fmt = domain_format(resolved, "A")
    assert not fmt.classic and fmt.dtype == "uint8" and 0 <= fmt.low < fmt.high <= 255
    ds = UnalignedDataset(unaligned_root, resolved.data, 3, 3, formats=(fmt, domain_format(resolved, "B")))
    assert ds[(0, 0, 1)]["a"].shape == (3, 32, 32)


def test_16bit_domain_refuses_an_8bit_input_in_one_line(tmp_path):
    fmt = DomainFormat(1, "uint16", 0, 65535, classic=False)
    jpg = sorted((SHARED_DATA / "horse2zebra" / "trainA").iterdir())[0]
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.asarray(Image.open(jpg).convert("RGB")))
    with pytest.raises(ImageLoadError, match=r"rgb.tif is 3-channel uint8 TIFF but this domain holds 1-channel uint16"):
        load_planes(path, fmt)


def test_tensor_array_clips_and_rounds_to_the_type():
    fmt = DomainFormat(1, "int16", -1024.0, 3071.0, classic=False)
    t = torch.tensor([[[-2.0, -1.0, 0.0, 1.0, 3.0]]])
    arr = tensor_array(t, fmt)
    assert arr.dtype == np.int16 and arr[0, :, 0].tolist() == [-1024, -1024, 1024, 3071, 3071]


@pytest.mark.slow
def test_train_and_translate_16bit_end_to_end(mrct, tmp_path, capsys):
    """A real 16-bit MR -> CT run through the CLI; translate writes 16-bit files back, both ways."""
    cfg = tiny_config(mrct, tmp_path / "runs", name="mrct", max_steps=2)
    args = ["train", str(mrct), "--name", "mrct", "--checkpoints-dir", str(tmp_path / "runs"), "--max-steps", "2",
            "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
            "--num-workers", "0", "--no-progress", "--intensity-a", "percentile", "--intensity-range-b", "0", "2500"]
    assert cfg.data.crop_size == 32
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "domain A" in out and "1-channel uint16" in out and "1-channel int16" in out
    saved = json.loads((tmp_path / "runs" / "mrct" / "config.json").read_text())
    assert saved["model"]["input_nc"] == 1 and saved["data"]["dtype_b"] == "int16"
    assert saved["data"]["intensity_b"] == "range" and saved["data"]["intensity_range_b"] == [0.0, 2500.0]
    run = str(tmp_path / "runs" / "mrct")
    assert main(["translate", run, str(mrct / "trainA"), "--output-dir", str(tmp_path / "ct"), "--no-progress"]) == 0
    ct = tifffile.imread(tmp_path / "ct" / "mr_overlay.tif")  # domain B is int16, which PNG cannot hold
    assert ct.dtype == np.int16 and ct.shape == (300, 484) and ct.min() >= 0 and ct.max() <= 2500
    assert main(["translate", run, str(mrct / "trainB"), "--direction", "BtoA", "--output-dir", str(tmp_path / "mr"),
                 "--no-progress"]) == 0
    mr = tifffile.imread(tmp_path / "mr" / "ct_small.tif")  # TIFF in, TIFF out, in domain A's uint16
    assert mr.dtype == np.uint16 and mr.shape == (128, 128)
    assert len(np.unique(mr)) > 256  # not rounded through 8 bits
    for extra in (["--max-size", "100"], ["--tile", "128"]):  # scaled back / tiled in float, then quantised
        out = tmp_path / extra[0].strip("-")
        assert main(["translate", run, str(mrct / "trainA" / "mr_overlay.png"), "--output-dir", str(out),
                     "--no-progress", *extra]) == 0
        ct = tifffile.imread(out / "mr_overlay.tif")
        assert ct.dtype == np.int16 and ct.shape == (300, 484) and len(np.unique(ct)) > 256


@pytest.mark.slow
def test_different_channel_counts_per_domain(tmp_path):
    """A: 1-channel 16-bit MR; B: 4-band float32 TIFFs made from real photos. Translate writes 4-band float TIFF."""
    root = tmp_path / "d"
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    Image.fromarray(dicom("MR_small.dcm").astype(np.uint16)).save(root / "trainA" / "mr.png")
    for jpg in sorted((SHARED_DATA / "horse2zebra" / "trainB").iterdir())[:2]:
        rgb = np.asarray(Image.open(jpg).convert("RGB").resize((64, 64)), dtype=np.float32) / 255
        tifffile.imwrite(root / "trainB" / f"{jpg.stem}.tif", np.dstack([rgb, rgb.mean(axis=2)]),
                             photometric="minisblack", planarconfig="contig")
    args = ["train", str(root), "--name", "mix", "--checkpoints-dir", str(tmp_path / "runs"), "--max-steps", "1",
            "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size", "32",
            "--num-workers", "0", "--no-progress", "--lambda-identity", "0"]
    assert main(args) == 0
    saved = json.loads((tmp_path / "runs" / "mix" / "config.json").read_text())
    assert (saved["model"]["input_nc"], saved["model"]["output_nc"]) == (1, 4)
    assert (tmp_path / "runs" / "mix" / "samples").is_dir()
    assert main(["translate", str(tmp_path / "runs" / "mix"), str(root / "trainA"), "--output-dir",
                 str(tmp_path / "o"), "--no-progress"]) == 0
    bands = tifffile.imread(tmp_path / "o" / "mr.tif")
    assert bands.dtype == np.float32 and bands.shape == (64, 64, 4)


def test_8bit_path_matches_the_authors_golden_transforms():
    """The 8-bit path through the new per-domain API gives the authors' get_transform tensors (all 40 cases)."""
    from cyclegan.data.transforms import TransformParams, apply_transform

    golden = SHARED_DATA.parent / "golden" / "transforms"
    cases = torch.load(golden / "transforms.pt", weights_only=False)
    assert len(cases) == 40
    for case in cases:
        fmt = DomainFormat(1 if case["grayscale"] else 3)
        cfg = DataConfig(preprocess=case["preprocess"], load_size=case["load_size"], crop_size=case["crop_size"])
        img = read_image(golden / case["image"], fmt)
        assert isinstance(img, Image.Image)  # Pillow on 8-bit values, as before
        params = TransformParams(*case["crop_pos"], bool(case["flip"]))
        got = image_tensor(apply_transform(img, params, cfg), fmt)
        assert got.shape == case["tensor"].shape
        assert torch.allclose(got, case["tensor"], atol=1e-6), (case["image"], case["preprocess"])


def test_evaluate_run_form_refuses_a_16bit_run_in_one_line(mrct, tmp_path):
    from cyclegan.evaluate import evaluate_run

    resolved, _ = resolve_formats(TrainConfig(data=DataConfig(dataroot=str(mrct))), mrct)
    run = tmp_path / "run"
    run.mkdir()
    resolved.save(run / "config.json")
    with pytest.raises(ConfigError, match="trained on 16-bit, float or N-channel images"):
        evaluate_run(run, phase="train")


@pytest.mark.parametrize("dtype, channels", [("uint8", 4), ("uint16", 3), ("int16", 1), ("int32", 1),
                                             ("uint32", 2), ("float32", 5)])
def test_tiff_types_read_and_written_at_their_depth(tmp_path, dtype, channels):
    """Real CT values scaled into each type, stored as an interleaved N-channel TIFF and back."""
    ct = dicom("CT_small.dcm").astype(np.float64)
    unit = (ct - ct.min()) / (ct.max() - ct.min())
    top = {"uint8": 255, "uint16": 65535, "int16": 32767, "int32": 2**31 - 1, "uint32": 2**32 - 1, "float32": 1.0}[dtype]
    arr = np.dstack([unit * top / (c + 1) for c in range(channels)])
    arr = arr.astype(dtype) if dtype == "float32" else np.round(arr).astype(dtype)
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, arr[:, :, 0] if channels == 1 else arr, photometric="minisblack", planarconfig="contig")
    kind = probe(path)
    assert (kind.channels, kind.dtype, kind.classic) == (channels, dtype, False)
    low, high = float(arr.min()), float(arr.max())
    fmt = DomainFormat(channels, dtype, low, high, classic=False)
    out = tmp_path / "out.tif"
    encode_image(image_tensor(read_image(path, fmt), fmt), (128, 128), fmt, out)
    back = tifffile.imread(out)
    assert back.dtype == np.dtype(dtype) and back.reshape(128, 128, channels).shape == arr.shape
    # float32 arithmetic between: exact to the level for <= 16 bits, to float32's 24 bits beyond
    tolerance = 1 if dtype in ("uint8", "uint16", "int16") else (high - low) * 2e-7 if dtype != "float32" else 1e-6
    assert np.abs(back.reshape(arr.shape).astype(np.float64) - arr.astype(np.float64)).max() <= tolerance
