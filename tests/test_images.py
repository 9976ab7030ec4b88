import os

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.data.images import (
    DatasetError,
    ImageLoadError,
    list_images,
    list_inputs,
    load_image,
    to_pil,
    to_tensor,
)


def _pixels(img, count):
    return [img.getpixel((x, 0)) for x in range(count)]


def test_grayscale_to_rgb_and_back(tmp_path):
    Image.new("L", (5, 4), 77).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png", 3)
    assert rgb.mode == "RGB" and rgb.size == (5, 4) and rgb.getpixel((0, 0)) == (77, 77, 77)
    gray = load_image(tmp_path / "g.png", 1)
    assert gray.mode == "L" and gray.getpixel((0, 0)) == 77


def test_rgb_to_grayscale(tmp_path):
    Image.new("RGB", (2, 2), (255, 0, 0)).save(tmp_path / "red.png")
    assert load_image(tmp_path / "red.png", 1).getpixel((0, 0)) == 76  # ITU-R 601 luma, as torchvision


def test_rgba_transparent_becomes_white(tmp_path):
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (10, 20, 30, 255))
    img.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", 3)
    assert out.mode == "RGB" and _pixels(out, 2) == [(255, 255, 255), (10, 20, 30)]


def test_la_transparent_becomes_white(tmp_path):
    img = Image.new("LA", (2, 1), (0, 0))
    img.putpixel((1, 0), (40, 255))
    img.save(tmp_path / "la.png")
    assert _pixels(load_image(tmp_path / "la.png", 3), 2) == [(255, 255, 255), (40, 40, 40)]
    assert _pixels(load_image(tmp_path / "la.png", 1), 2) == [255, 40]


def _palette(transparent: bool, path):
    p = Image.new("P", (2, 1), 0)
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.save(path, **({"transparency": 0} if transparent else {}))
    return path


def test_palette(tmp_path):
    out = load_image(_palette(False, tmp_path / "p.png"), 3)
    assert _pixels(out, 2) == [(0, 0, 0), (200, 10, 10)]


def test_palette_with_transparency(tmp_path):
    out = load_image(_palette(True, tmp_path / "pt.png"), 3)
    assert _pixels(out, 2) == [(255, 255, 255), (200, 10, 10)]


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    out = load_image(tmp_path / "deep.png", 3)
    assert [p[0] for p in _pixels(out, 3)] == [0, 128, 255]  # plain convert gives 255 for mid grey


def test_dark_16bit_image_stays_dark(tmp_path):
    # All values <= 255 in a 16-bit file are still 16-bit values: near black, not bright.
    Image.fromarray(np.array([[0, 200, 255]], dtype=np.uint16)).save(tmp_path / "dark.png")
    assert _pixels(load_image(tmp_path / "dark.png", 1), 3) == [0, 1, 1]


def test_big_endian_16bit_tiff(tmp_path):
    Image.fromarray(np.array([[0, 32896, 65535]], dtype=">u2")).save(tmp_path / "be.tif")
    assert Image.open(tmp_path / "be.tif").mode == "I;16B"
    assert _pixels(load_image(tmp_path / "be.tif", 1), 3) == [0, 128, 255]


def test_32bit_integer_and_float_images(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32)).save(tmp_path / "i8.tif")
    assert _pixels(load_image(tmp_path / "i8.tif", 1), 3) == [0, 100, 255]  # 8-bit values in 'I'
    Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.int32)).save(tmp_path / "i16.tif")
    assert _pixels(load_image(tmp_path / "i16.tif", 1), 3) == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32)).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    assert _pixels(load_image(tmp_path / "f.tif", 3), 4) == [(0,) * 3, (128,) * 3, (255,) * 3, (0,) * 3]


def test_one_bit_and_ycbcr(tmp_path):
    Image.new("1", (3, 2), 1).save(tmp_path / "bw.png")
    assert load_image(tmp_path / "bw.png", 3).getpixel((0, 0)) == (255, 255, 255)
    Image.new("YCbCr", (3, 2), (128, 128, 128)).save(tmp_path / "ycc.tif")
    # (Pillow 10-11 reopens it as YCbCr; newer ones convert it to RGB on reading: either way
    # the pixels must come out right)
    r, g, b = load_image(tmp_path / "ycc.tif", 3).getpixel((0, 0))
    assert max(abs(v - 128) for v in (r, g, b)) <= 2


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    r, g, b = load_image(tmp_path / "c.jpg", 3).getpixel((1, 1))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 128, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    assert Image.open(tmp_path / "r.jpg").size == (30, 10)
    assert load_image(tmp_path / "r.jpg", 3).size == (10, 30)


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".tiff", ".webp", ".png", ".jpg", ".jpeg"])
def test_formats(tmp_path, ext):
    Image.new("RGB", (6, 5), (90, 40, 200)).save(tmp_path / f"x{ext}", **({"lossless": True} if ext == ".webp" else {}))
    out = load_image(tmp_path / f"x{ext}", 3)
    assert out.mode == "RGB" and out.size == (6, 5)
    if ext not in (".jpg", ".jpeg"):
        assert out.getpixel((2, 2)) == (90, 40, 200)


def _truncated(tmp_path, ext):
    path = tmp_path / f"t{ext}"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make", [
    lambda p: _written(p / "zero.jpg", b""),
    lambda p: _written(p / "text.jpg", b"hello, this is not a JPEG\n"),
    lambda p: _truncated(p, ".jpg"),
    lambda p: _truncated(p, ".png"),
    lambda p: p / "missing.png",
], ids=["zero-byte", "text", "truncated-jpeg", "truncated-png", "missing"])
def test_bad_files_name_the_file(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(ImageLoadError) as err:
        load_image(path, 3)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "--on-bad-image skip" in message


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match=r"big\.png: too large.*limit"):
        load_image(tmp_path / "big.png", 3)


def test_channels_must_be_1_or_3(tmp_path):
    Image.new("L", (2, 2)).save(tmp_path / "g.png")
    with pytest.raises(ValueError, match="channels"):
        load_image(tmp_path / "g.png", 2)


def test_tensor_round_trip():
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    t = to_tensor(img)
    assert t.shape == (3, 4, 4) and t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    assert t[0, 0, 0] == -1 and abs(float(t[2, 3, 3]) - (235 / 127.5 - 1)) < 1e-6
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(img))
    gray = Image.fromarray(np.array([[0, 255], [7, 128]], dtype=np.uint8))
    assert to_tensor(gray).shape == (1, 2, 2)
    assert np.array_equal(np.asarray(to_pil(to_tensor(gray))), np.asarray(gray))
    assert to_pil(torch.zeros(1, 2, 2)).getpixel((0, 0)) == 128  # 127.5 rounds half to even
    assert to_pil(torch.full((3, 1, 1), 5.0)).getpixel((0, 0)) == (255, 255, 255)  # clamped
    with pytest.raises(ValueError, match="shape"):
        to_pil(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match="mode"):
        to_tensor(Image.new("RGBA", (2, 2)))


def test_list_images_sorted_filtered_and_limited(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.webp", "notes.txt", "d.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()  # a folder with an image name is not an image
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]
    assert [p.name for p in list_images(tmp_path, max_count=2)] == ["a.jpg", "b.PNG"]


def test_list_images_follows_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.png").write_bytes(b"x")
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "real" / "x.png", tmp_path / "d" / "link.png")
    os.symlink(tmp_path / "real", tmp_path / "d" / "dirlink.jpg")
    assert [p.name for p in list_images(tmp_path / "d")] == ["link.png"]


def test_listing_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"missing does not exist; expected layout ROOT/trainA, ROOT/trainB"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="empty holds no images"):
        list_images(tmp_path / "empty")


def test_list_inputs(tmp_path):
    (tmp_path / "dir").mkdir()
    for name in ("b.png", "a.png"):
        (tmp_path / "dir" / name).write_bytes(b"x")
    (tmp_path / "single.dat").write_bytes(b"x")  # named explicitly: taken whatever its extension
    found = list_inputs([tmp_path / "single.dat", str(tmp_path / "dir")])
    assert [p.name for p in found] == ["single.dat", "a.png", "b.png"]
    with pytest.raises(DatasetError, match="nope.jpg does not exist"):
        list_inputs([tmp_path / "dir", tmp_path / "nope.jpg"])
    with pytest.raises(DatasetError, match="no input images"):
        list_inputs([])
