"""Loading images as float arrays, the shipped example photo, and atomic writes of results.

Everything here is plain numpy on the host: images are data, not traced values, so they are read
eagerly and validated with ordinary Python checks before any JAX code sees them. This module does
not import JAX (the command line reads and validates files before JAX starts).

Every file jaxconv writes goes through :func:`atomic_path`: a temporary file next to the
destination, fsynced, renamed over it, then the folder fsynced. A symbolic link is written
through (its target is replaced, the link kept); a directory, device, FIFO or socket is refused.
Temporary files left by a killed writer are removed by the next write to the same path.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.resources
import json
import math
import os
import re
import reprlib
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: a file another process holds open cannot be deleted anyway
    fcntl = None  # type: ignore[assignment]

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
# Default cap on decoded pixels (width x height): 2**27, a 1 GiB float64 gray image. It lies
# between Pillow's own decompression-bomb warning (PIL.Image.MAX_IMAGE_PIXELS, ~2**26.4) and its
# error (twice that, ~2**27.4), so with Pillow's defaults this documented cap is the one met first.
MAX_PIXELS = 2**27
_NODE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def as_path(fn: str, arg: str, path: Any) -> Path:
    """``path`` as a :class:`~pathlib.Path`; a TypeError naming ``fn`` and ``arg`` otherwise."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{fn}: `{arg}` must be a str or os.PathLike; got {reprlib.repr(path)}.")
    return Path(os.fspath(path))


def load_image(
    path: str | os.PathLike[str],
    *,
    dtype: Any = None,
    as_gray: bool = True,
    max_pixels: int | None = MAX_PIXELS,
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
      1-bit images become 0/1, float images are returned unchanged. The size in the file's header
      is checked against `max_pixels` before anything is decoded: a small compressed file can
      claim gigabytes of pixels.

    With ``as_gray=True`` an RGB(A) result is converted to gray with the ITU-R BT.601 luma weights
    ``0.299 R + 0.587 G + 0.114 B`` (alpha is dropped, not composited).

    Args:
        path: file to read.
        dtype: floating dtype of the result; ``None`` means ``float64``.
        as_gray: convert colour images to a single gray channel.
        max_pixels: most pixels (width x height) an image file may decode to; default ``2**27``
            (a 1 GiB float64 gray image); ``None`` lifts the cap. Pillow's own decompression-bomb
            limit, ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (about 1.8e8 by default), still applies;
            set ``PIL.Image.MAX_IMAGE_PIXELS = None`` to lift that too. Text and ``.npy`` files are
            not capped: their size on disk is their size in memory.

    Returns:
        An array of shape ``(H, W)``, or ``(H, W, C)`` with ``C`` in ``{3, 4}`` when ``as_gray`` is
        false and the file holds a colour image.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown extension, empty file, malformed text (the message names the line and
            column), undecodable image, an image larger than `max_pixels` or Pillow's limit,
            object array, or a result that is not an image.
        TypeError: ``path`` is not a str or path, ``dtype`` is not a floating dtype,
            ``max_pixels`` is not an int or None, or the stored array is not real-valued.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from jaxconv import load_image
        >>> p = os.path.join(tempfile.mkdtemp(), "tiny.txt")
        >>> np.savetxt(p, [[0.0, 0.5], [1.0, 0.25]])
        >>> load_image(p).shape
        (2, 2)
    """
    path = as_path("load_image", "path", path)
    out_dtype = np.dtype(np.float64 if dtype is None else dtype)
    if out_dtype.kind != "f":
        raise TypeError(f"load_image: `dtype` must be a floating dtype; got {out_dtype}.")
    if max_pixels is not None:
        if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
            raise TypeError(f"load_image: `max_pixels` must be an int or None; got {max_pixels!r}.")
        if max_pixels < 1:
            raise ValueError(f"load_image: `max_pixels` must be >= 1; got {max_pixels}.")
    if not path.exists():
        raise FileNotFoundError(f"load_image: `path` does not exist; got '{path}'.")
    if not path.is_file():
        raise ValueError(f"load_image: `path` must be a regular file; got '{path}'.")
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path], np.ndarray]] = {}
    readers.update(dict.fromkeys(_TEXT_SUFFIXES, _read_text))
    readers.update(dict.fromkeys(_NPY_SUFFIXES, _read_npy))
    readers.update(dict.fromkeys(_IMAGE_SUFFIXES, lambda p: _read_pillow(p, max_pixels)))
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


def _read_pillow(path: Path, max_pixels: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        # `max_pixels` is the documented cap, so Pillow's warning (at half its error limit) is
        # not repeated; its error still applies and is reported below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header; pixels are decoded on first access
                width, height = im.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ValueError(
                        f"load_image: `path` must decode to at most `max_pixels` = {max_pixels} "
                        f"pixels; got {width} x {height} = {width * height} in '{path}'. Pass a "
                        "larger `max_pixels` (or None) to read it."
                    )
                im.seek(0)
                if im.mode in ("P", "PA"):
                    has_alpha = im.mode == "PA" or "transparency" in im.info
                    im = im.convert("RGBA" if has_alpha else "RGB")
                elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                mode = im.mode
                array = np.array(im)
    except Image.DecompressionBombError as e:
        raise ValueError(
            f"load_image: `path` must decode to at most Pillow's decompression-bomb limit "
            f"(2 * PIL.Image.MAX_IMAGE_PIXELS); got '{path}': {e} Set "
            "PIL.Image.MAX_IMAGE_PIXELS = None (and pass a large enough `max_pixels`) to read it."
        ) from e
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


def _jsonable(obj: Any) -> Any:
    """``obj`` with arrays as lists, numpy scalars as Python ones and NaN/inf as None (null)."""
    if isinstance(obj, float):  # numpy's float64 included
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, dict):
        return {key: _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(value) for value in obj]
    if hasattr(obj, "__array__"):  # numpy and JAX arrays and numpy scalars
        return _jsonable(np.asarray(obj).tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"save_json_atomic: `obj` must be JSON-serialisable; got {type(obj).__name__}.")


def _write_target(fn: str, arg: str, path: Any) -> Path:
    """The file a write to `path` replaces: `path`, or a symbolic link's final target.

    Replacing a link would turn it into a plain file and leave its target stale, so the target is
    written instead. Anything but a regular file (or a new name) is refused: renaming over a
    device, FIFO or socket would replace the node itself, and over a directory fails.
    """
    path = as_path(fn, arg, path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        kind = next((kind for test, kind in _NODE_KINDS if test(mode)), "not a regular file")
        shown = f"'{path}'" if target == path else f"'{path}' -> '{target}'"
        raise ValueError(f"{fn}: `{arg}` must be a regular file or a new name; got {kind} {shown}.")
    return target


def _remove_stale(target: Path) -> None:
    """Deletes the temporary files a killed writer left next to `target`.

    A writer holds an exclusive ``flock`` on its temporary file until it is renamed (see
    :func:`_new_temp`), and the kernel drops the lock when the writer dies: a file whose lock can
    be taken is stale. Without ``fcntl`` (Windows) a file open in another process cannot be
    deleted, which protects a running writer as well.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.\w+\.tmp({re.escape(target.suffix)})?")
    stale: list[str] = []
    with contextlib.suppress(OSError):
        stale = [e.path for e in os.scandir(target.parent) if pattern.fullmatch(e.name)]
    for name in stale:
        with contextlib.suppress(OSError):
            if fcntl is None:
                os.unlink(name)
                continue
            with open(name, "rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # busy: BlockingIOError
                os.unlink(name)


def _new_temp(target: Path) -> tuple[BinaryIO, Path]:
    """Creates a temporary file next to `target`; returns it open and locked, and its path."""
    while True:
        fd, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
        )
        held = os.fdopen(fd, "rb")
        if fcntl is None:
            return held, Path(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Another writer's _remove_stale may have taken the lock first and deleted the file.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                return held, Path(name)
        held.close()


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, fn: str = "atomic_path", arg: str = "path"
) -> Iterator[Path]:
    """Yields a temporary path to write; on success moves it over `path` atomically.

    The temporary file is created (empty) next to `path`, so that ``os.replace`` stays within one
    file system and is atomic: readers see the old file or the complete new one, never a partial
    write. When the ``with`` block ends without an exception the file is fsynced, given the
    permissions a plain ``open`` would, renamed over `path`, and the folder is fsynced so that the
    rename survives a crash; on an exception (including KeyboardInterrupt) it is deleted and
    `path` is left as it was. Missing parent folders are created. A symbolic link at `path` is
    written through (its target is replaced, the link kept). Temporary files that a killed writer
    left next to `path` are deleted first (not those of a writer still running).

    The temporary name is ``.{name}.{random}.tmp{suffix}``: it keeps `path`'s suffix, so writers
    that pick a format from the extension (matplotlib's ``savefig``, Pillow) pick the right one.

    Args:
        path: destination file: a regular file, a new name, or a link to either.
        fn, arg: the public function and argument named in error messages.

    Yields:
        The temporary path; write it by name (it may be opened, truncated, memory-mapped).

    Raises:
        TypeError: `path` is not a str or path.
        ValueError: `path` is a directory, device, FIFO or socket (or a link to one).

    Examples:
        >>> import os, tempfile
        >>> from jaxconv.io import atomic_path
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> with atomic_path(path) as tmp:
        ...     _ = tmp.write_text("complete")
        >>> open(path).read()
        'complete'
    """
    target = _write_target(fn, arg, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    held, tmp = _new_temp(target)
    try:
        with held:  # the lock marks the file as in use until it is renamed
            yield tmp
            os.fsync(held.fileno())  # the file's data, whichever descriptor wrote it
        set_default_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def _write_atomic(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    fn: str = "atomic_path",
    arg: str = "path",
) -> Path:
    """Calls ``write`` on a binary file that :func:`atomic_path` moves over `path`; returns it."""
    with atomic_path(path, fn=fn, arg=arg) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(os.fspath(path))


def preallocate(path: Path, size: int, *, fn: str, arg: str) -> None:
    """Reserves `size` bytes of disk for the file at `path`, extending it to at least `size`.

    A memory map into a sparse file dies with SIGBUS when a page is written and the disk is
    full; reserved blocks cannot run out. A full disk is then an OSError here, naming the size.
    Where ``posix_fallocate`` is missing (macOS, Windows) or unsupported by the file system,
    the file is extended sparsely and the free space compared with `size` instead: a best
    effort, as other writers may fill the disk later.

    Raises:
        OSError: the disk (or quota) has no room for `size` bytes; its ``errno`` is the cause.
    """
    with open(path, "rb+") as f:
        try:
            if not hasattr(os, "posix_fallocate"):
                raise OSError(errno.EOPNOTSUPP, "posix_fallocate is not available")
            os.posix_fallocate(f.fileno(), 0, size)
            return
        except OSError as err:
            cause = err
        free = shutil.disk_usage(path.parent).free
        full = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
        if cause.errno not in full and free >= size:
            if os.fstat(f.fileno()).st_size < size:
                f.truncate(size)
            return
    raise OSError(
        cause.errno if cause.errno in full else errno.ENOSPC,
        f"{fn}: `{arg}` needs {size} bytes ({_human(size)}) of disk space; got "
        f"{free} bytes free on the file system of '{path.parent}' ({cause.strerror or cause}).",
    ) from cause


def _human(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


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
    """Writes ``obj`` as indented, strictly valid JSON (RFC 8259) to ``path`` atomically.

    numpy and JAX arrays become nested lists, numpy scalars become Python numbers. JSON has no
    NaN or infinity, so non-finite floats (NaN, ``inf``, ``-inf``, in arrays too) are written as
    ``null`` and read back as ``None``: every JSON parser accepts the file. Missing parent
    directories are created; a symbolic link is written through (see :func:`atomic_path`). The
    object is serialised before anything is written, so a serialisation error leaves ``path``
    untouched.

    Args:
        path: destination file: a regular file, a new name, or a link to either.
        obj: a JSON-serialisable object (dicts, lists, numbers, strings, arrays).

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent, or ``path`` is not a path.
        ValueError: ``path`` is a directory, device, FIFO or socket.
    """
    data = (json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n").encode("utf-8")
    return _write_atomic(path, lambda f: f.write(data), fn="save_json_atomic")


def save_npz_atomic(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Writes arrays to an uncompressed ``.npz`` archive at ``path`` atomically.

    Like ``np.savez(path, **arrays)``, except that the file is written exactly at ``path`` (no
    ``.npz`` is appended) and appears only once complete, so an interrupted checkpoint never
    replaces a good one (see :func:`atomic_path`). JAX arrays are copied to the host.

    Args:
        path: destination file: a regular file, a new name, or a link to either.
        **arrays: name → array-like; read back with ``np.load(path)[name]``.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ValueError: no arrays were given, or ``path`` is a directory, device, FIFO or socket.
        TypeError: an array has an object dtype (it would need pickle to load), or ``path`` is
            not a path.
    """
    if not arrays:
        raise ValueError("save_npz_atomic: `arrays` must name at least one array; got none.")
    host = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in host.items():
        if value.dtype.hasobject:  # would need pickle to load, which load_image refuses
            raise TypeError(
                f"save_npz_atomic: `{name}` must be a numeric array; got dtype {value.dtype}."
            )
    return _write_atomic(path, lambda f: np.savez(f, **host), fn="save_npz_atomic")
