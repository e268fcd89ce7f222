"""Compiled functions that trace once per kind of call, whatever the batch size."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf


def _relaxed_spec(value: Any) -> Any:
    """A tensor's spec with its leading (batch) axis left open; other values as they are."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        shape = list(value.shape)
        return tf.TensorSpec(shape[:0] if not shape else [None, *shape[1:]], value.dtype)
    return value


class TracedOnceFunction:
    """A ``tf.function`` whose first trace for a call signature already leaves the batch open.

    Left alone, ``reduce_retracing`` traces the first call for its exact shapes and traces again
    when the next batch or span has another size: every new explainer paid two traces of the
    same function. Tracing first for the relaxed signature makes every later size reuse it.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = tf.function(function, reduce_retracing=True)
        self._traced: set[str] = set()
        self._lock = threading.Lock()

    def concrete(self, *args: Any) -> Any:
        """The concrete function that serves calls like ``args`` (traced now if need be)."""
        specs = tf.nest.map_structure(_relaxed_spec, args)
        key = repr(specs)
        if key not in self._traced:
            with self._lock:
                if key not in self._traced:
                    self._function.get_concrete_function(*specs)
                    self._traced.add(key)
        return self._function.get_concrete_function(*specs)

    def __call__(self, *args: Any) -> Any:
        specs = tf.nest.map_structure(_relaxed_spec, args)
        key = repr(specs)
        if key not in self._traced:
            with self._lock:
                if key not in self._traced:
                    self._function.get_concrete_function(*specs)
                    self._traced.add(key)
        return self._function(*args)
