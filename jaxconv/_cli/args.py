"""The command line's argument checks: usage errors (exit status 2) found before JAX starts.

Shared by ``_cli/main.py`` (the parser and the sub-commands) and ``_cli/fit.py`` (``jaxconv fit``);
standard library only, so a bad flag is rejected in milliseconds.
"""

import math
import tempfile
from pathlib import Path


class UsageError(Exception):
    """A problem with the command line that argparse cannot see; exit code 2."""


def check_positive(flag: str, value: float | None) -> None:
    """A usage error unless `value` is None or a finite number > 0."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} must be a finite number > 0; got {value}.")


def check_writable(flag: str, path: Path, *, folder: bool) -> None:
    """A usage error unless `path` (a folder, or a file if not `folder`) can be created or written.

    Probes with a temporary file in the folder that would receive the output (the file's folder:
    atomic writes create a temporary file next to it), which catches permissions, read-only file
    systems and special folders alike; nothing else is created.
    """
    path = Path(path).absolute()
    if path.exists():
        if folder and not path.is_dir():
            raise UsageError(f"{flag} must be a folder; got the existing file '{path}'.")
        if not folder and path.is_dir():
            raise UsageError(f"{flag} must be a file; got the existing folder '{path}'.")
        where = path if folder else path.parent
    else:
        where = next(p for p in path.parents if p.exists())
        if not where.is_dir():
            raise UsageError(f"{flag} cannot be created: '{where}' is a file; got '{path}'.")
    try:
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UsageError(f"{flag} cannot be written: '{where}' ({reason}); got '{path}'.") from None
