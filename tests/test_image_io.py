"""Image decoding: every input kind, every mode, and every way an image can be bad."""

import io

import numpy as np
import pytest
from PIL import Image
from segmentkit.errors import ImageError, ImageTooLargeError
from segmentkit.io import image_key, load_image


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)


def test_all_input_kinds_agree(tmp_path, rgb):
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    with open(path, "rb") as handle:
        for source in (path, str(path), path.read_bytes(), Image.fromarray(rgb), rgb, handle):
            out = load_image(source)
            assert out.dtype == np.uint8 and out.shape == (12, 20, 3) and out.flags.c_contiguous
            np.testing.assert_array_equal(out, rgb)


def test_exif_orientation_is_applied(rgb):
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = png_bytes(img, "JPEG", exif=exif.tobytes(), quality=100)
    out = load_image(data)
    assert out.shape == (20, 12, 3)  # height and width swapped


def test_modes_are_converted(rgb):
    gray = Image.fromarray(rgb[..., 0])
    np.testing.assert_array_equal(load_image(gray), np.repeat(rgb[..., :1], 3, axis=2))
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])  # fully transparent -> white
    assert (load_image(png_bytes(Image.fromarray(rgba))) == 255).all()
    sixteen = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    assert sixteen.mode.startswith("I;16")
    np.testing.assert_array_equal(load_image(png_bytes(sixteen))[..., 0], rgb[..., 0])
    pal = Image.fromarray(rgb).convert("P")
    np.testing.assert_array_equal(load_image(png_bytes(pal)), np.asarray(pal.convert("RGB")))
    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert load_image(cmyk).shape == (12, 20, 3)


def test_array_conversions():
    floats = np.full((2, 2, 3), 0.5)
    assert (load_image(floats) == 128).all()
    assert load_image(np.ones((3, 3), bool)).max() == 255
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((2, 2), np.nan))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ImageError, match="no pixels"):
        load_image(np.zeros((0, 4, 3), np.uint8))


def test_bad_files(tmp_path, rgb):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not an image")
    good = png_bytes(Image.fromarray(rgb))
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "text.png")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(tmp_path / "trunc.png")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="cannot read"):
        load_image(12345)


def test_pixel_limit_checked_before_decoding(rgb):
    data = png_bytes(Image.new("RGB", (5000, 5000)))
    with pytest.raises(ImageTooLargeError, match="25,000,000 pixels, over the limit of 1,000,000"):
        load_image(data, max_pixels=1_000_000)
    with pytest.raises(ImageTooLargeError):
        load_image(rgb, max_pixels=100)


def test_image_key_depends_on_content_and_shape(rgb):
    assert image_key(rgb) == image_key(rgb.copy())
    other = rgb.copy()
    other[0, 0, 0] ^= 1
    assert image_key(other) != image_key(rgb)
    assert image_key(rgb.reshape(20, 12, 3)) != image_key(rgb)
