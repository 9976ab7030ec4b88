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


def test_grayscale_to_rgb_and_back(tmp_path):
    Image.new("L", (5, 4), 77).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png", 3)
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (77, 77, 77)
    assert load_image(tmp_path / "g.png", 1).mode == "L"


def test_rgba_transparent_becomes_white(tmp_path):
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (10, 20, 30, 255))
    img.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", 3)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 0)) == (10, 20, 30)


def test_la_and_palette_with_transparency(tmp_path):
    Image.new("LA", (2, 2), (0, 0)).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", 3).getpixel((0, 0)) == (255, 255, 255)
    p = Image.new("P", (2, 2), 0)
    p.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    out = load_image(tmp_path / "p.png", 3)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((1, 1)) == (200, 10, 10)


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = load_image(tmp_path / "deep.png", 3)
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    r, g, b = load_image(tmp_path / "c.jpg", 3).getpixel((1, 1))
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (30, 10), (0, 128, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg", 3).size == (10, 30)


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".webp", ".png", ".jpg"])
def test_formats(tmp_path, ext):
    Image.new("RGB", (6, 5), (90, 40, 200)).save(tmp_path / f"x{ext}")
    assert load_image(tmp_path / f"x{ext}", 3).size == (6, 5)


def _truncated(tmp_path, ext):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"t{ext}")
    data = (tmp_path / f"t{ext}").read_bytes()
    (tmp_path / f"t{ext}").write_bytes(data[: len(data) // 2])
    return tmp_path / f"t{ext}"


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make", [
    lambda p: _written(p / "zero.jpg", b""),
    lambda p: _written(p / "text.jpg", b"hello"),
    lambda p: _truncated(p, ".jpg"),
    lambda p: _truncated(p, ".png"),
])
def test_bad_files_name_the_file(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(ImageLoadError) as err:
        load_image(path, 3)
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "--on-bad-image skip" in message


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(tmp_path / "big.png", 3)


def test_tensor_round_trip():
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    t = to_tensor(img)
    assert t.shape == (3, 4, 4) and t.min() >= -1 and t.max() <= 1 and t.dtype == torch.float32
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(img))
    gray = to_pil(torch.zeros(1, 2, 2))
    assert gray.mode == "L" and gray.getpixel((0, 0)) == 128


def test_listing_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        list_inputs([tmp_path / "nope.jpg"])
