"""Loading images as float arrays, the shipped example photo, and atomic writes of results.

Everything here is plain numpy on the host: images are data, not traced values, so they are read
eagerly and validated with ordinary Python checks before any JAX code sees them.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["default_image", "load_image", "save_json_atomic", "save_npz_atomic"]

_TEXT_SUFFIXES = (".csv", ".dat", ".txt")
_NPY_SUFFIXES = (".npy",)
# Raster formats Pillow reads reliably; Pillow registers more extensions (.pdf, .eps, .h5, ...) that
# it can only write or only identify, so a curated list gives a clearer error than a failed decode.
_IMAGE_SUFFIXES = (
    ".bmp", ".gif", ".jfif", ".jpe", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm",
    ".qoi", ".tga", ".tif", ".tiff", ".webp",
)  # fmt: skip
# ITU-R BT.601 luma weights, the convention of Pillow's own "L" conversion and of MATLAB's rgb2gray.
_LUMA_601 = np.array([0.299, 0.587, 0.114])
_DEFAULT_IMAGE = "chelsea.txt"
_DATA_DIR_ENV = "JAXCONV_DATA_DIR"


def load_image(
    path: str | os.PathLike[str], *, dtype: Any = None, as_gray: bool = True
) -> np.ndarray:
    """Loads an image file as a float numpy array.

    Supported formats, chosen by the (case-insensitive) file extension:

    * ``.txt``, ``.dat``: whitespace-separated numbers, one image row per line, as read by
      ``np.loadtxt(path)``; blank lines and ``#`` comments are skipped. ``.csv`` also accepts
      commas. Values are returned unchanged.
    * ``.npy``: a numeric array saved with ``np.save``, read with ``allow_pickle=False``. Values are
      returned unchanged (integers are not rescaled).
    * ``.png``, ``.jpg``, ``.tif``, ``.bmp``, ``.gif``, ``.webp``, ...: decoded with Pillow (the
      first frame of multi-frame files). 8-bit and 16-bit integer samples are scaled to ``[0, 1]``,
      1-bit images become 0/1, float images are returned unchanged.

    With ``as_gray=True`` an RGB(A) result is converted to gray with the ITU-R BT.601 luma weights
    ``0.299 R + 0.587 G + 0.114 B`` (alpha is dropped, not composited).

    Args:
        path: file to read.
        dtype: floating dtype of the result; ``None`` means ``float64``.
        as_gray: convert colour images to a single gray channel.

    Returns:
        An array of shape ``(H, W)``, or ``(H, W, C)`` with ``C`` in ``{3, 4}`` when ``as_gray`` is
        false and the file holds a colour image.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension, empty file, malformed text (the message names the line and
            column), undecodable image, object array, or a result that is not an image.
        TypeError: ``dtype`` is not a floating dtype, or the stored array is not real-valued.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from jaxconv import load_image
        >>> p = os.path.join(tempfile.mkdtemp(), "tiny.txt")
        >>> np.savetxt(p, [[0.0, 0.5], [1.0, 0.25]])
        >>> load_image(p).shape
        (2, 2)
    """
    out_dtype = np.dtype(np.float64 if dtype is None else dtype)
    if out_dtype.kind != "f":
        raise TypeError(f"load_image: `dtype` must be a floating dtype; got {out_dtype}.")
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"load_image: `path` does not exist; got '{path}'.")
    if not path.is_file():
        raise ValueError(f"load_image: `path` must be a regular file; got '{path}'.")
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path], np.ndarray]] = {}
    readers.update(dict.fromkeys(_TEXT_SUFFIXES, _read_text))
    readers.update(dict.fromkeys(_NPY_SUFFIXES, _read_npy))
    readers.update(dict.fromkeys(_IMAGE_SUFFIXES, _read_pillow))
    if suffix not in readers:
        known = ", ".join(sorted(readers))
        raise ValueError(f"load_image: `path` must end in one of {known}; got '{path.name}'.")
    if path.stat().st_size == 0:
        raise ValueError(f"load_image: `path` must not be empty; got an empty file '{path}'.")

    image = readers[suffix](path)
    if image.ndim == 3 and image.shape[-1] in (3, 4) and as_gray:
        image = image[..., :3] @ _LUMA_601
    colour = image.ndim == 3 and image.shape[-1] in (3, 4)
    if image.ndim != 2 and not colour:
        want = "2-D" if as_gray else "2-D, or 3-D with 3 or 4 channels"
        raise ValueError(f"load_image: `path` must hold a {want} image; got shape {image.shape}.")
    if image.size == 0:
        raise ValueError(f"load_image: `path` must hold data; got shape {image.shape} in '{path}'.")
    return np.asarray(image, dtype=out_dtype)


def _read_text(path: Path) -> np.ndarray:
    """Parses whitespace (or, for .csv, comma) separated numbers, reporting the first bad token."""
    is_csv = path.suffix.lower() == ".csv"
    separator = re.compile(r"\s*,\s*|\s+" if is_csv else r"\s+")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"load_image: `path` must be UTF-8 text; got {e.reason} in '{path}'."
        ) from e
    rows: list[list[float]] = []
    first_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if is_csv:  # tolerate a trailing comma, as spreadsheets write
            line = line.rstrip(",").rstrip()
        if not line:
            continue
        tokens = separator.split(line)
        try:
            row = [float(t) for t in tokens]
        except ValueError:
            col, bad = next((i, t) for i, t in enumerate(tokens, 1) if not _is_float(t))
            raise ValueError(
                f"load_image: `path` line {lineno}, column {col} must be a number; got {bad!r} "
                f"in '{path}'."
            ) from None
        if rows and len(row) != len(rows[0]):
            raise ValueError(
                f"load_image: `path` line {lineno} must have {len(rows[0])} columns like line "
                f"{first_line}; got {len(row)} in '{path}'."
            )
        if not rows:
            first_line = lineno
        rows.append(row)
    if not rows:
        raise ValueError(f"load_image: `path` must hold numbers; got no data lines in '{path}'.")
    return np.array(rows, dtype=np.float64)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(len(np.lib.format.MAGIC_PREFIX))
    # Checked first because np.load would try to unpickle anything else, and report only that.
    if magic != np.lib.format.MAGIC_PREFIX:
        raise ValueError(
            f"load_image: `path` must be a valid .npy file; got no NumPy header in '{path}'."
        )
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(
                f"load_image: `path` must hold a numeric array; got an object (pickled) array in "
                f"'{path}', which is refused because unpickling can run arbitrary code."
            ) from e
        raise ValueError(f"load_image: `path` must be a valid .npy file; got '{path}': {e}") from e
    if array.dtype.kind not in "biuf":
        raise TypeError(f"load_image: `path` must hold a real array; got dtype {array.dtype}.")
    return array.astype(np.float64)


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.seek(0)
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
            elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            mode = im.mode
            array = np.array(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"load_image: `path` must be a readable image; got '{path}': {e}") from e
    if mode == "LA":  # gray + alpha: drop the alpha, as for RGBA
        array = array[..., 0]
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if array.dtype in (np.uint8, np.uint16):
        return array / float(np.iinfo(array.dtype).max)
    if array.dtype.kind in "iu":  # mode "I": 32-bit container, 16-bit data in practice (PNG, TIFF)
        if array.min() < 0 or array.max() > 65535:
            raise ValueError(
                f"load_image: `path` must hold 8- or 16-bit integer samples; got values in "
                f"[{array.min()}, {array.max()}] in '{path}'."
            )
        return array / 65535.0
    return array.astype(np.float64)


def default_image() -> np.ndarray:
    """Returns the shipped example photograph as a float64 gray image in ``[0, 1]``.

    The photo is scikit-image's "chelsea" (CC0), gray, resized to 200 x 300; ``data/README.md`` in
    the repository gives its provenance and checksum. ``data/chelsea.txt`` is the documented source;
    the package ships it as package data (``jaxconv/data/chelsea.txt``, a link to it in a checkout),
    read with :mod:`importlib.resources`, so it works from a checkout, an editable install and a
    wheel alike. ``$JAXCONV_DATA_DIR``, if set, names a folder whose ``chelsea.txt`` is used
    instead.

    Returns:
        An array of shape ``(200, 300)`` and dtype float64.

    Raises:
        FileNotFoundError: the file is not where it was looked for; the message says where.
    """
    override = os.environ.get(_DATA_DIR_ENV)
    if override:
        path = Path(override) / _DEFAULT_IMAGE
        if not path.is_file():
            raise FileNotFoundError(
                f"default_image: ${_DATA_DIR_ENV} must name a folder holding {_DEFAULT_IMAGE}; "
                f"got none at '{path}'. Unset it to use the photo shipped with the package."
            )
        return load_image(path)
    resource = importlib.resources.files("jaxconv") / "data" / _DEFAULT_IMAGE
    if not resource.is_file():
        raise FileNotFoundError(
            f"default_image: the package data file must exist; got none at '{resource}'. The "
            f"installation is incomplete: reinstall jaxconv (from a checkout: pip install -e .)."
        )
    with importlib.resources.as_file(resource) as path:
        return load_image(path)


def _json_default(obj: Any) -> Any:
    """Serialises numpy and JAX arrays and scalars, which the json module rejects."""
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"save_json_atomic: `obj` must be JSON-serialisable; got {type(obj).__name__}.")


def _write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Writes via a temporary file in the target's directory, fsyncs it, then renames it over.

    ``os.replace`` within one directory (hence one file system) is atomic, so readers see either
    the old file or the complete new one, never a partial write.
    """
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        set_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def set_default_mode(path: str | os.PathLike[str]) -> None:
    """Gives a ``mkstemp`` file (created 0600) the permissions a plain ``open`` would have."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fsync_dir(folder: Path) -> None:
    # Persists the rename itself; directories cannot be opened this way on Windows, hence the guard.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Writes ``obj`` as indented JSON to ``path`` atomically.

    numpy and JAX arrays become nested lists, numpy scalars become Python numbers. Missing parent
    directories are created. The object is serialised before anything is written, so a
    serialisation error leaves ``path`` untouched.

    Args:
        path: destination file.
        obj: a JSON-serialisable object (dicts, lists, numbers, strings, arrays).

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    data = (json.dumps(obj, indent=2, default=_json_default) + "\n").encode("utf-8")
    return _write_atomic(path, lambda f: f.write(data))


def save_npz_atomic(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Writes arrays to an uncompressed ``.npz`` archive at ``path`` atomically.

    Like ``np.savez(path, **arrays)``, except that the file is written exactly at ``path`` (no
    ``.npz`` is appended) and appears only once complete, so an interrupted checkpoint never
    replaces a good one. JAX arrays are copied to the host.

    Args:
        path: destination file.
        **arrays: name → array-like; read back with ``np.load(path)[name]``.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ValueError: no arrays were given.
        TypeError: an array has an object dtype (it would need pickle to load).
    """
    if not arrays:
        raise ValueError("save_npz_atomic: `arrays` must name at least one array; got none.")
    host = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in host.items():
        if value.dtype.hasobject:  # would need pickle to load, which load_image refuses
            raise TypeError(
                f"save_npz_atomic: `{name}` must be a numeric array; got dtype {value.dtype}."
            )
    return _write_atomic(path, lambda f: np.savez(f, **host))
