"""Checkpoints of a running fit: written atomically, refused loudly when they do not match.

A checkpoint is one ``.npz`` file (written with :func:`jaxconv.save_npz_atomic`, hence
:func:`jaxconv.io.atomic_path`: a temporary file, fsync, then an atomic rename, so a fit killed
mid-write leaves the previous checkpoint intact, and its temporary file is removed by the next save;
a symbolic link is written through) holding every leaf of the loop's state (parameters, optimizer
state, step, status, best parameters), the loss and parameter histories so far, and a JSON header.
The header carries a fingerprint of everything that determines the fit — the image and target bytes,
the model, the starting parameters, the optimizer, the loss and stopping options — so that resuming
with the same arguments continues exactly where the fit stopped (the same compiled steps on the same
state, hence the same answer, bit for bit), and resuming with different ones raises instead of
silently starting over. A file that cannot be read is an error too: delete it to start afresh.
"""

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxconv.io import save_npz_atomic

FORMAT = "jaxconv-fit-checkpoint"
VERSION = 2  # 2: the loop state of the solver interface (_fit/solvers.py)


def digest(*parts: Any) -> str:
    """sha256 of arrays (their dtype, shape and bytes) and of the ``repr`` of anything else."""
    h = hashlib.sha256()
    for part in parts:
        for leaf in jax.tree_util.tree_leaves(part):
            if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
                arr = np.ascontiguousarray(np.asarray(leaf))
                h.update(f"{arr.dtype.str}{arr.shape}".encode())
                h.update(arr.tobytes())
            else:
                h.update(repr(leaf).encode())
        h.update(b"|")
    return h.hexdigest()


def save(
    path: str | os.PathLike,
    state: Any,
    history: dict[str, Any],
    fingerprint: dict[str, str],
    info: dict[str, Any],
) -> Path:
    """Writes the loop `state` (a pytree), `history` arrays and a header atomically."""
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"state_{i}": np.asarray(v) for i, v in enumerate(leaves)}
    arrays.update({f"history_{k}": np.asarray(v) for k, v in history.items()})
    header = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": fingerprint,
        "treedef": str(jax.tree_util.tree_structure(state)),
        "leaves": [[list(np.shape(v)), np.asarray(v).dtype.str] for v in leaves],
        "history": sorted(history),
        **info,
    }
    arrays["header"] = np.array(json.dumps(header, sort_keys=True))
    return save_npz_atomic(path, **arrays)


def load(
    fn: str, path: str | os.PathLike, like: Any, fingerprint: dict[str, str]
) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]] | None:
    """Reads a checkpoint written for a fit with this `fingerprint` and state structure `like`.

    Returns:
      ``(state, history, header)``, or None when no file exists at `path` (a fresh start).

    Raises:
      ValueError: the file is unreadable (corrupt, truncated, not a fit checkpoint) or was written
        by a fit with other arguments.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
        header = json.loads(str(contents.pop("header")))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("the header does not name a jaxconv fit checkpoint")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{fn}: `checkpoint` file '{path}' is corrupt or not a jaxconv fit checkpoint "
            f"({err}); delete it (or pass another path) to start the fit afresh."
        ) from err
    if header.get("version") != VERSION:
        raise ValueError(
            f"{fn}: `checkpoint` file '{path}' has format version {header.get('version')!r}; "
            f"this jaxconv reads version {VERSION}."
        )
    saved = header.get("fingerprint", {})
    differ = sorted(k for k in fingerprint if saved.get(k) != fingerprint[k])
    if differ:
        raise ValueError(
            f"{fn}: `checkpoint` file '{path}' was written by a fit with different "
            f"{', '.join(differ)}; resume with the same arguments, or pass another path "
            "to start afresh."
        )
    leaves, treedef = jax.tree_util.tree_flatten(like)
    specs = [[list(np.shape(v)), np.asarray(v).dtype.str] for v in leaves]
    if header.get("treedef") != str(treedef) or header.get("leaves") != specs:
        raise ValueError(
            f"{fn}: `checkpoint` file '{path}' holds a state of another structure "
            "(model, optimizer or batch size differ); pass another path to start afresh."
        )
    try:
        restored = [contents[f"state_{i}"] for i in range(len(leaves))]
        history = {k: contents[f"history_{k}"] for k in header["history"]}
    except KeyError as err:
        raise ValueError(
            f"{fn}: `checkpoint` file '{path}' is corrupt or not a jaxconv fit checkpoint "
            f"(missing {err}); delete it (or pass another path) to start the fit afresh."
        ) from err
    state = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(v) for v in restored])
    return state, history, header
