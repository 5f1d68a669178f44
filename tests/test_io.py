"""Tests for jaxconv.io: image loading, the shipped photo, atomic writes."""

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import zlib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxconv
from jaxconv import default_image, load_image, save_json_atomic, save_npz_atomic

try:
    import fcntl
except ImportError:
    fcntl = None

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
    import jaxconv.io as io

    monkeypatch.delenv("JAXCONV_DATA_DIR", raising=False)
    monkeypatch.setattr(io, "_DEFAULT_IMAGE", "absent.txt")
    with pytest.raises(FileNotFoundError, match=r"default_image: .*absent\.txt.*reinstall"):
        default_image()


def test_default_image_missing_names_where_it_looked(tmp_path, monkeypatch):
    import jaxconv.io as io

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
    import jaxconv.io as io

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


# ---------------------------------------------------------------- strict JSON


def _strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"not RFC 8259 JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_save_json_atomic_writes_non_finite_floats_as_null(tmp_path):
    obj = {
        "nan": float("nan"),
        "inf": float("inf"),
        "f32": np.float32("-inf"),
        "array": np.array([1.5, np.nan, -np.inf]),
        "jax": jnp.array([np.nan, 2.0]),
        "nested": ({"deep": [np.float64("nan"), 3]},),
        "finite": 0.1,
    }
    path = save_json_atomic(tmp_path / "r.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert _strict_loads(text) == {
        "nan": None,
        "inf": None,
        "f32": None,
        "array": [1.5, None, None],
        "jax": [None, 2.0],
        "nested": [{"deep": [None, 3]}],
        "finite": 0.1,
    }


# ---------------------------------------------------------------- what a write may replace


def test_a_symlink_is_written_through(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "r.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(Path("real") / "r.json")  # relative, resolved from the link's folder
    assert save_json_atomic(link, {"v": 1}) == link
    assert link.is_symlink() and _strict_loads(target.read_text()) == {"v": 1}
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "real" / "new.npz")
    save_npz_atomic(dangling, a=np.arange(3))
    assert dangling.is_symlink()
    with np.load(tmp_path / "real" / "new.npz") as f:
        np.testing.assert_array_equal(f["a"], [0, 1, 2])
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["new.npz", "r.json"]
    assert _leftovers(tmp_path, "real") == ["dangling.npz", "link.json"]


def _special(tmp_path, kind):
    if kind == "character device":
        return Path("/dev/null"), "'/dev/null'"
    if kind == "FIFO":
        os.mkfifo(tmp_path / "fifo")
        return tmp_path / "fifo", "'.*fifo'"
    if kind == "directory":
        (tmp_path / "d").mkdir()
        return tmp_path / "d", "'.*d'"
    (tmp_path / "link").symlink_to("/dev/null")  # a link to a device
    return tmp_path / "link", "'.*link' -> '/dev/null'"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX nodes")
@pytest.mark.parametrize("kind", ["character device", "FIFO", "directory", "link"])
def test_devices_fifos_and_directories_are_refused(tmp_path, kind, monkeypatch):
    replace = os.replace

    def guarded(src, dst):  # a regression must not replace /dev/null (tests may run as root)
        assert Path(dst).resolve().is_relative_to(tmp_path.resolve()), f"would replace {dst}"
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", guarded)
    path, shown = _special(tmp_path, kind)
    noun = "a character device" if kind in ("character device", "link") else f"a {kind}"
    pattern = (
        rf"save_json_atomic: `path` must be a regular file or a new name; got {noun} {shown}\."
    )
    with pytest.raises(ValueError, match=pattern):
        save_json_atomic(path, {"v": 1})
    with pytest.raises(ValueError, match=r"save_npz_atomic: `path` must be a regular file"):
        save_npz_atomic(path, a=np.zeros(2))
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_path_of_the_wrong_type(tmp_path):
    with pytest.raises(TypeError, match=r"save_json_atomic: `path` must be a str or os.PathLike; "
                       r"got None\."):  # fmt: skip
        save_json_atomic(None, {})
    with pytest.raises(TypeError, match=r"load_image: `path` must be a str or os.PathLike; got 3"):
        load_image(3)
    with pytest.raises(
        TypeError, match=r"load_image: `path` must be a str or os.PathLike; got None"
    ):
        load_image(None)


# ---------------------------------------------------------------- temporary files


@pytest.mark.skipif(fcntl is None, reason="flock")
def test_stale_temporary_files_are_removed_but_not_a_running_writers(tmp_path):
    stale = [".r.json.k2j4h5x_.tmp", ".r.json.9f8e7d6c5b4a39281706f5e4d3c2b1a0.tmp.json"]
    kept = [".r.json.busy1234.tmp.json", ".q.json.k2j4h5x_.tmp", "r.json.tmp", ".r.json.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 100)
    with open(tmp_path / kept[0], "rb") as busy:  # a writer still at work holds its lock
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX)
        save_json_atomic(tmp_path / "r.json", {"v": 1})
    assert _leftovers(tmp_path, "r.json") == sorted(kept)


@pytest.mark.skipif(fcntl is None, reason="flock")
def test_a_temporary_file_removed_before_its_lock_is_replaced(tmp_path, monkeypatch):
    import jaxconv.io as io

    flock, names = fcntl.flock, []

    def raced(fd, op):  # another writer's cleanup wins the race for the first file
        if not names:
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
            os.unlink(names[0])
        return flock(fd, op)

    monkeypatch.setattr(io.fcntl, "flock", raced)
    held, tmp = io._new_temp(tmp_path / "r.json")
    with held:
        assert tmp.exists() and str(tmp) != names[0]
        assert os.fstat(held.fileno()).st_ino == tmp.stat().st_ino


def test_atomic_path_keeps_the_suffix_and_mode(tmp_path):
    import jaxconv.io as io

    path = tmp_path / "fig.png"
    with io.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".fig.png.")
        assert tmp.name.endswith(".tmp.png")
        Image.new("L", (3, 2)).save(tmp)  # Pillow picks the format from the suffix
    with Image.open(path) as im:
        assert (im.format, im.size) == ("PNG", (3, 2))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(KeyboardInterrupt), io.atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert path.read_bytes()[:4] == b"\x89PNG" and _leftovers(tmp_path, "fig.png") == []


def test_atomic_writes_fsync_the_folder_after_the_rename(tmp_path, monkeypatch):
    import jaxconv.io as io

    seen = []
    monkeypatch.setattr(io, "_fsync_dir", lambda d: seen.append((d, sorted(os.listdir(d)))))
    save_json_atomic(tmp_path / "r.json", {})
    save_npz_atomic(tmp_path / "a.npz", a=np.zeros(1))
    assert seen == [(tmp_path, ["r.json"]), (tmp_path, ["a.npz", "r.json"])]


# ---------------------------------------------------------------- disk space


def _enospc(fd, offset, length):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_preallocate_a_full_disk_names_the_size(tmp_path, monkeypatch):
    import jaxconv.io as io

    monkeypatch.setattr(os, "posix_fallocate", _enospc, raising=False)
    (tmp_path / "f").write_bytes(b"")
    pattern = (
        r"g: `out` needs 123456789 bytes \(117\.7 MiB\) of disk space; got \d+ bytes free on the "
        r"file system of .*No space"
    )
    with pytest.raises(OSError, match=pattern) as err:
        io.preallocate(tmp_path / "f", 123456789, fn="g", arg="out")
    assert err.value.errno == errno.ENOSPC


@pytest.mark.parametrize("how", ["missing", "unsupported"])
def test_preallocate_falls_back_to_the_free_space(tmp_path, monkeypatch, how):
    import jaxconv.io as io

    if how == "missing":
        monkeypatch.delattr(os, "posix_fallocate", raising=False)
    else:

        def unsupported(fd, offset, length):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

        monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    (tmp_path / "f").write_bytes(b"head")
    io.preallocate(tmp_path / "f", 5000, fn="g", arg="out")
    assert (tmp_path / "f").stat().st_size == 5000 and (tmp_path / "f").read_bytes()[:4] == b"head"
    usage = shutil.disk_usage(tmp_path)._replace(free=4999)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage)
    with pytest.raises(OSError, match=r"g: `out` needs 6000 bytes .*; got 4999 bytes free"):
        io.preallocate(tmp_path / "f", 6000, fn="g", arg="out")


def test_preallocate_reserves_the_blocks(tmp_path):
    import jaxconv.io as io

    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate here")
    (tmp_path / "f").write_bytes(b"")
    io.preallocate(tmp_path / "f", 1 << 20, fn="g", arg="out")
    info = (tmp_path / "f").stat()
    assert info.st_size == 1 << 20 and info.st_blocks * 512 >= 1 << 20  # allocated, not sparse


# ---------------------------------------------------------------- decompression bombs


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A 1 x 1 PNG whose header (IHDR, CRC fixed) claims `width` x `height`."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_an_image_larger_than_max_pixels_is_refused_from_its_header(tmp_path):
    import jaxconv.io as io

    # 144e6 pixels: over the default cap (2**27) and over Pillow's warning limit, whose warning
    # would be an error here; the file holds one pixel, so a decode would fail differently.
    path = _png_claiming(tmp_path / "bomb.png", 12000, 12000)
    with pytest.raises(ValueError, match=r"load_image: `path` must decode to at most `max_pixels` "
                       r"= 134217728 pixels; got 12000 x 12000 = 144000000 in '.*bomb\.png'\. "
                       r"Pass a larger `max_pixels` \(or None\)"):  # fmt: skip
        load_image(path)
    assert io.MAX_PIXELS == 2**27


def test_pillows_decompression_bomb_error_is_wrapped(tmp_path):
    path = _png_claiming(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(ValueError, match=r"load_image: `path` must decode to at most Pillow's "
                       r"decompression-bomb limit \(2 \* PIL.Image.MAX_IMAGE_PIXELS\); got "
                       r"'.*bomb\.png': Image size \(400000000 pixels\) exceeds"):  # fmt: skip
        load_image(path, max_pixels=None)


def test_max_pixels_override(tmp_path):
    Image.fromarray(np.full((10, 20), 255, np.uint8)).save(tmp_path / "im.png")
    with pytest.raises(ValueError, match=r"at most `max_pixels` = 199 pixels; got 20 x 10 = 200"):
        load_image(tmp_path / "im.png", max_pixels=199)
    np.testing.assert_array_equal(
        load_image(tmp_path / "im.png", max_pixels=200), np.ones((10, 20))
    )
    np.testing.assert_array_equal(
        load_image(tmp_path / "im.png", max_pixels=None), np.ones((10, 20))
    )
    # Lifted: 9e7 pixels pass Pillow's warning without one and reach the decoder (which finds
    # the file truncated).
    path = _png_claiming(tmp_path / "big.png", 10000, 9000)
    with pytest.raises(ValueError, match=r"`path` must be a readable image; got .*big\.png"):
        load_image(path, max_pixels=None)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1.5, TypeError, r"`max_pixels` must be an int or None; got 1\.5"),
        (True, TypeError, r"`max_pixels` must be an int or None; got True"),
        (0, ValueError, r"`max_pixels` must be >= 1; got 0"),
    ],
)
def test_max_pixels_validation(tmp_path, value, error, message):
    Image.new("L", (2, 2)).save(tmp_path / "im.png")
    with pytest.raises(error, match=rf"load_image: {message}\."):
        load_image(tmp_path / "im.png", max_pixels=value)
