"""Tests for jaxconv._io: image loading, the shipped photo, atomic writes."""

import hashlib
import json
import os
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxconv
from jaxconv import default_image, load_image, save_json_atomic, save_npz_atomic

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture
def image():
    return np.random.default_rng(0).uniform(size=(7, 11))


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".txt", ".dat", ".TXT"])
def test_text_round_trip(tmp_path, image, suffix):
    path = tmp_path / f"im{suffix}"
    np.savetxt(path, image)
    out = load_image(path)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.loadtxt(path))
    np.testing.assert_allclose(out, image, rtol=1e-15)


def test_text_comments_blank_lines_and_str_path(tmp_path):
    path = tmp_path / "im.txt"
    path.write_text("# header\n1 2 3\n\n  4\t5 6   # trailing comment\n")
    np.testing.assert_array_equal(load_image(str(path)), [[1, 2, 3], [4, 5, 6]])


def test_csv_accepts_commas(tmp_path, image):
    path = tmp_path / "im.csv"
    np.savetxt(path, image, delimiter=",")
    np.testing.assert_allclose(load_image(path), image, rtol=1e-15)
    path.write_text("1, 2,3,\n4,5 ,6\n")
    np.testing.assert_array_equal(load_image(path), [[1, 2, 3], [4, 5, 6]])


def test_single_row_is_2d(tmp_path):
    path = tmp_path / "row.txt"
    path.write_text("1 2 3\n")
    assert load_image(path).shape == (1, 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.uint8, np.bool_])
def test_npy_round_trip(tmp_path, image, dtype):
    array = (image * 100).astype(dtype)
    np.save(tmp_path / "im.npy", array)
    out = load_image(tmp_path / "im.npy")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, array.astype(np.float64))  # values are not rescaled


def test_dtype_argument(tmp_path, image):
    np.save(tmp_path / "im.npy", image)
    out = load_image(tmp_path / "im.npy", dtype=jnp.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, image, rtol=1e-7)


def test_png_8bit_round_trip(tmp_path):
    u8 = np.random.default_rng(1).integers(0, 256, size=(5, 9), dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "im.png")
    np.testing.assert_array_equal(load_image(tmp_path / "im.png"), u8 / 255.0)


def test_png_16bit_scaled_to_unit_range(tmp_path):
    u16 = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(u16).save(tmp_path / "im16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "im16.png"), u16 / 65535.0)


def test_png_rgb_to_gray_uses_bt601_luma(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = (rgb / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(load_image(tmp_path / "rgb.png"), expected, rtol=1e-12)
    colour = load_image(tmp_path / "rgb.png", as_gray=False)
    np.testing.assert_array_equal(colour, rgb / 255.0)


def test_rgba_alpha_dropped(tmp_path):
    rgba = np.random.default_rng(3).integers(0, 256, size=(4, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    expected = (rgba[..., :3] / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png"), expected, rtol=1e-12)
    assert load_image(tmp_path / "rgba.png", as_gray=False).shape == (4, 6, 4)


def test_npy_rgb_to_gray(tmp_path):
    rgb = np.random.default_rng(4).uniform(size=(3, 5, 3))
    np.save(tmp_path / "rgb.npy", rgb)
    expected = rgb @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(load_image(tmp_path / "rgb.npy"), expected, rtol=1e-12)


def test_tiff_float_unchanged(tmp_path):
    f32 = np.array([[0.5, 2.0], [-1.0, 3.25]], dtype=np.float32)
    Image.fromarray(f32).save(tmp_path / "im.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "im.tif"), f32)


def test_jpeg_loads_close_to_source(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "im.jpg", quality=95)
    np.testing.assert_allclose(load_image(tmp_path / "im.jpg"), ramp / 255.0, atol=0.03)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_image: `path` does not exist; got .*nope"):
        load_image(tmp_path / "nope.txt")


def test_directory_refused(tmp_path):
    (tmp_path / "d.txt").mkdir()
    with pytest.raises(ValueError, match="must be a regular file"):
        load_image(tmp_path / "d.txt")


def test_unknown_extension(tmp_path):
    (tmp_path / "im.xyz").write_text("1 2\n")
    with pytest.raises(ValueError, match=r"must end in one of .*\.npy.*; got 'im\.xyz'"):
        load_image(tmp_path / "im.xyz")


@pytest.mark.parametrize("name", ["e.txt", "e.npy", "e.png"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ValueError, match="must not be empty; got an empty file"):
        load_image(tmp_path / name)


def test_only_comments_is_no_data(tmp_path):
    (tmp_path / "c.txt").write_text("# nothing\n\n   \n")
    with pytest.raises(ValueError, match="got no data lines"):
        load_image(tmp_path / "c.txt")


def test_non_numeric_token_names_line_and_column(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 2 3\n4 five 6\n")
    with pytest.raises(ValueError, match=r"line 2, column 2 must be a number; got 'five' in .*bad"):
        load_image(path)


def test_ragged_rows_name_line(tmp_path):
    path = tmp_path / "ragged.txt"
    path.write_text("# c\n1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(
        ValueError, match=r"line 4 must have 3 columns like line 2; got 2 in .*ragg"
    ):
        load_image(path)


def test_comma_in_txt_is_not_a_separator(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"line 1, column 1 must be a number; got '1,2'"):
        load_image(path)


def test_non_utf8_text(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="must be UTF-8 text"):
        load_image(tmp_path / "b.txt")


def test_object_array_refused(tmp_path):
    array = np.empty((2, 2), dtype=object)
    array[:] = [[1, "a"], [None, 2.0]]
    np.save(tmp_path / "obj.npy", array, allow_pickle=True)
    with pytest.raises(ValueError, match=r"object \(pickled\) array .* refused"):
        load_image(tmp_path / "obj.npy")


def test_corrupt_npy(tmp_path):
    (tmp_path / "junk.npy").write_bytes(b"not an npy file at all")
    with pytest.raises(ValueError, match=r"must be a valid \.npy file"):
        load_image(tmp_path / "junk.npy")


def test_complex_npy_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((2, 2), complex))
    with pytest.raises(TypeError, match="must hold a real array; got dtype complex128"):
        load_image(tmp_path / "c.npy")


def test_corrupt_png(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match="must be a readable image"):
        load_image(tmp_path / "junk.png")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (2, 2, 2, 2)])
def test_not_2d(tmp_path, shape):
    np.save(tmp_path / "a.npy", np.zeros(shape))
    with pytest.raises(ValueError, match=r"must hold a 2-D image; got shape"):
        load_image(tmp_path / "a.npy")


def test_zero_size_array(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"must hold data; got shape \(0, 4\)"):
        load_image(tmp_path / "z.npy")


def test_int_dtype_refused(tmp_path, image):
    np.save(tmp_path / "a.npy", image)
    with pytest.raises(TypeError, match="load_image: `dtype` must be a floating dtype; got int32"):
        load_image(tmp_path / "a.npy", dtype=np.int32)


# ---------------------------------------------------------------- shipped photo


def _readme_sha256() -> str:
    match = re.search(r"^([0-9a-f]{64})  chelsea\.txt$", (DATA / "README.md").read_text(), re.M)
    assert match, "data/README.md must list the sha256 of chelsea.txt in sha256sum format"
    return match.group(1)


def test_shipped_photo_sha256_matches_readme():
    digest = hashlib.sha256((DATA / "chelsea.txt").read_bytes()).hexdigest()
    assert digest == _readme_sha256()


def test_default_image():
    photo = default_image()
    assert photo.shape == (200, 300)
    assert photo.dtype == np.float64
    assert 0.0 <= photo.min() < photo.max() <= 1.0
    np.testing.assert_array_equal(photo, np.loadtxt(DATA / "chelsea.txt"))  # the seed's way
    assert jaxconv.default_image is default_image


def test_default_image_env_override(tmp_path, monkeypatch):
    np.savetxt(tmp_path / "chelsea.txt", np.eye(3))
    monkeypatch.setenv("JAXCONV_DATA_DIR", str(tmp_path))
    np.testing.assert_array_equal(default_image(), np.eye(3))


def test_default_image_is_package_data_identical_to_data_folder(monkeypatch):
    # data/chelsea.txt is the documented source; the package ships the same bytes as package data.
    import importlib.resources

    monkeypatch.delenv("JAXCONV_DATA_DIR", raising=False)
    shipped = importlib.resources.files("jaxconv") / "data" / "chelsea.txt"
    assert shipped.read_bytes() == (DATA / "chelsea.txt").read_bytes()


def test_default_image_missing_package_data_says_reinstall(monkeypatch):
    import jaxconv._io as io

    monkeypatch.delenv("JAXCONV_DATA_DIR", raising=False)
    monkeypatch.setattr(io, "_DEFAULT_IMAGE", "absent.txt")
    with pytest.raises(FileNotFoundError, match=r"default_image: .*absent\.txt.*reinstall"):
        default_image()


def test_default_image_missing_names_where_it_looked(tmp_path, monkeypatch):
    import jaxconv._io as io

    monkeypatch.setattr(io, "_DEFAULT_IMAGE", "absent.txt")
    monkeypatch.setenv("JAXCONV_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"default_image: .*got none at .*absent\.txt"):
        default_image()


# ---------------------------------------------------------------- atomic writes


def _leftovers(folder: Path, final: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != final)


def test_save_json_atomic(tmp_path):
    obj = {"a": 1, "x": np.arange(3), "j": jnp.ones(2), "s": np.float32(0.5), "p": tmp_path}
    out = save_json_atomic(tmp_path / "sub" / "r.json", obj)
    assert out == tmp_path / "sub" / "r.json"
    loaded = json.loads(out.read_text())
    assert loaded == {"a": 1, "x": [0, 1, 2], "j": [1.0, 1.0], "s": 0.5, "p": str(tmp_path)}
    assert _leftovers(out.parent, "r.json") == []


def test_save_json_atomic_overwrites_and_failure_keeps_old(tmp_path):
    path = tmp_path / "r.json"
    save_json_atomic(path, {"v": 1})
    save_json_atomic(path, {"v": 2})
    with pytest.raises(TypeError, match="save_json_atomic: `obj` must be JSON-serialisable"):
        save_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 2}
    assert _leftovers(tmp_path, "r.json") == []


def test_save_npz_atomic(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_npz_atomic(path, w=jnp.arange(4.0), step=np.int64(7))
    with np.load(path, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["w"], [0, 1, 2, 3])
        assert f["step"] == 7
    assert _leftovers(tmp_path, "ckpt.npz") == []


def test_save_npz_atomic_exact_path_and_errors(tmp_path):
    save_npz_atomic(tmp_path / "ckpt", a=np.zeros(2))
    assert os.listdir(tmp_path) == ["ckpt"]  # no ".npz" appended, no temp file left
    with pytest.raises(ValueError, match="save_npz_atomic: `arrays` must name at least one"):
        save_npz_atomic(tmp_path / "x.npz")
    with pytest.raises(TypeError, match="save_npz_atomic: `bad` must be a numeric array"):
        save_npz_atomic(tmp_path / "x.npz", bad=np.array([None, 1], dtype=object))
    assert os.listdir(tmp_path) == ["ckpt"]


def test_interrupted_write_leaves_no_temp_file(tmp_path):
    save_json_atomic(tmp_path / "r.json", {"ok": True})
    with pytest.raises(TypeError):
        save_json_atomic(tmp_path / "r.json", {"bad": {1, 2}})
    import jaxconv._io as io

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io._write_atomic(tmp_path / "r.json", failing)
    assert json.loads((tmp_path / "r.json").read_text()) == {"ok": True}
    assert _leftovers(tmp_path, "r.json") == []


def test_npz_named_npy_refused(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 2)))
    os.replace(tmp_path / "a.npz", tmp_path / "a.npy")
    with pytest.raises(ValueError, match=r"must be a valid \.npy file; got no NumPy header"):
        load_image(tmp_path / "a.npy")


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((20, 20)))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:200])
    with pytest.raises(ValueError, match=r"must be a valid \.npy file; got"):
        load_image(tmp_path / "t.npy")
