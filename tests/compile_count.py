"""Counting XLA compilations: ``with compile_count() as n: ...; assert n.value == 0``.

JAX reports every backend compilation to ``jax.monitoring`` as a duration event whose name
contains ``backend_compile``; the listener counts them, and unregisters itself at the end of the
block. (With the persistent compilation cache on, a program loaded from it is reported too:
count ``/jax/compilation_cache/cache_misses`` events there instead.)
"""

import contextlib
from collections.abc import Iterator

import jax


class Count:
    """The number of compilations seen so far (`value`) and their names' events (`events`)."""

    def __init__(self):
        self.value = 0
        self.events: list[str] = []


@contextlib.contextmanager
def compile_count() -> Iterator[Count]:
    """Counts the XLA compilations run inside the ``with`` block."""
    count = Count()

    def listener(event: str, duration: float, **kwargs) -> None:
        if "backend_compile" in event:
            count.value += 1
            count.events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
