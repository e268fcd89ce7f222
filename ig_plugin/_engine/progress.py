"""Progress reports from inside a compiled loop, to the explain that is waiting for it.

A compiled function cannot take a Python callback as an argument without being traced again for
each one. So a callback is registered under an integer token for the length of one explain, the
token goes into the graph as a tensor, and each finished chunk calls :func:`report` with it. The
registry is guarded by a lock: explains in several threads each get their own token.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

_lock = threading.Lock()
_callbacks: dict[int, Callable[[int], None]] = {}
_tokens = itertools.count(1)


@contextlib.contextmanager
def reporting(callback: Callable[[int], None] | None) -> Iterator[tf.Tensor | None]:
    """Register ``callback`` for the block; yields its token (None when there is no callback)."""
    if callback is None:
        yield None
        return
    with _lock:
        token = next(_tokens)
        _callbacks[token] = callback
    try:
        yield tf.constant(token, tf.int64)
    finally:
        with _lock:
            del _callbacks[token]


def _call_back(token: np.ndarray, points: np.ndarray) -> np.int64:
    with _lock:
        callback = _callbacks.get(int(token))
    if callback is not None:
        callback(int(points))
    return np.int64(0)


def report(token: tf.Tensor, points: tf.Tensor) -> tf.Tensor:
    """Graph op: tell the callback registered under ``token`` that ``points`` more are done.

    Returns a dummy tensor for the caller to depend on, so the report runs in its iteration.
    """
    return tf.numpy_function(_call_back, [token, points], tf.int64, stateful=True)
