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
    """A ``tf.function`` whose first trace for a call signature already leaves the batch open,
    and whose calls go straight to that trace.

    Left alone, ``reduce_retracing`` traces the first call for its exact shapes and traces again
    when the next batch or span has another size: every new explainer paid two traces of the
    same function. Tracing first for the relaxed signature makes every later size reuse it.

    A call then runs the concrete function of its signature directly: ``tf.function``'s own
    dispatch (matching the arguments' types against its traces) cost more than a small model's
    gradients, about 1.2 ms per call on 2 cores, where a one-sample explain of a small model
    takes 3 ms. Should the concrete function refuse the arguments (a value its trace took as a
    constant differs beyond what the signature's text shows), the call goes through
    ``tf.function``, which traces anew if it must.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = tf.function(function, reduce_retracing=True)
        self._concrete: dict[str, Any] = {}
        self._lock = threading.Lock()

    def concrete(self, *args: Any) -> Any:
        """The concrete function that serves calls like ``args`` (traced now if need be)."""
        specs = tf.nest.map_structure(_relaxed_spec, args)
        key = repr(specs)
        concrete = self._concrete.get(key)
        if concrete is None:
            with self._lock:
                concrete = self._concrete.get(key)
                if concrete is None:
                    concrete = self._function.get_concrete_function(*specs)
                    self._concrete[key] = concrete
        return concrete

    def __call__(self, *args: Any) -> Any:
        concrete = self.concrete(*args)
        try:
            return concrete(*args)
        except (TypeError, ValueError):
            return self._function(*args)
