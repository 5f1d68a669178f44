"""A persistent compilation cache: compiled XLA programs kept on disk, reused by later processes.

jaxconv compiles each fit or filter program once per shape in a process (see ``_fit/step.py``);
the persistent cache carries those programs over to the next process, so rerunning a script
skips compiling. It is JAX's own cache (``jax_compilation_cache_dir``), set up with one call.

Off by default in the library: turning it on changes process-wide JAX settings (every program
of the process, jaxconv's or not, is then written to disk), writes to the user's home folder
without being asked, and lets the folder grow without bound. That is an application's decision,
not a library's: the ``jaxconv`` command line turns it on, and a script turns it on with
:func:`enable_compilation_cache`.
"""

import os
from pathlib import Path

import jax

_OFF = ("", "off", "0", "none")


def cache_folder() -> Path | None:
    """The default folder: ``$JAXCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxconv/xla`` or
    ``~/.cache/jaxconv/xla``; None if ``$JAXCONV_CACHE_DIR`` is empty or ``off``."""
    folder = os.environ.get("JAXCONV_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "jaxconv" / "xla"
    if folder.strip().lower() in _OFF:
        return None
    return Path(folder)


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Keeps compiled XLA programs on disk, so a later process with the same programs skips
    compiling them.

    Turns on JAX's persistent compilation cache for the whole process (all programs, also
    the small ones: ``jax_persistent_cache_min_compile_time_secs = 0``). Call it once, early
    in a script; it is off by default in the library (see the module docstring) and on in the
    ``jaxconv`` command line.

    Args:
      path: the cache folder (created when needed). Default: a folder JAX was already given
        (``jax_compilation_cache_dir``, left as it is), else ``$JAXCONV_CACHE_DIR`` (empty or
        ``off`` turns the cache off), else ``$XDG_CACHE_HOME/jaxconv/xla`` or
        ``~/.cache/jaxconv/xla``.

    Returns:
      The folder in use, or None if the cache stays off.

    Raises:
      TypeError: if `path` is not a path.

    Examples:
      >>> import tempfile, jaxconv
      >>> folder = jaxconv.enable_compilation_cache(tempfile.mkdtemp())  # doctest: +SKIP
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"enable_compilation_cache: `path` must be a path or None; got {type(path).__name__}."
        )
    if path is None:
        if jax.config.jax_compilation_cache_dir:
            return Path(jax.config.jax_compilation_cache_dir)
        path = cache_folder()
        if path is None:
            return None
    jax.config.update("jax_compilation_cache_dir", os.fspath(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # many small programs
    return Path(path)
