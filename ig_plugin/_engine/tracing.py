"""Compiled functions that trace once per kind of call, whatever the batch size."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf


def _relaxed_spec(value: Any) -> Any:
    """A tensor's spec with its leading (batch) axis left open; other values as they are."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        shape = list(value.shape)
        return tf.TensorSpec(shape[:0] if not shape else [None, *shape[1:]], value.dtype)
    return value


def _signature(value: Any) -> Any:
    """What decides which trace serves ``value``, as a key: its structure (the containers
    ``tf.nest`` walks: tuples, lists, named tuples, dicts), its tensors' dtypes and shapes
    after the batch axis, and its other values' types and reprs (numpy 1's repr of
    ``np.float32(0.1)`` is that of the float ``0.1``).

    The repr of the relaxed specs said as much, but building them cost about 0.2 ms per call, as
    much as a small model's gradients.
    """
    if isinstance(value, (np.ndarray, tf.Tensor)):
        return tuple(value.shape[1:]), value.dtype.name, len(value.shape)
    if isinstance(value, dict):
        return dict, tuple((key, _signature(item)) for key, item in sorted(value.items()))
    if isinstance(value, (tuple, list)):
        return type(value), tuple(_signature(item) for item in value)
    return type(value), repr(value)


def _enabled_autograph() -> tuple[Callable[..., Any], Any]:
    """TensorFlow's internal ``tf_convert`` (the one tf_keras calls) and a context that turns
    AutoGraph on for it."""
    autograph = tf.__internal__.autograph
    current = autograph.control_status_ctx()
    return autograph.tf_convert, type(current)(status=type(current.status).ENABLED)


def _converts_model_alone() -> bool:
    """Whether this TensorFlow has the internal AutoGraph API :func:`_enabled_autograph` takes."""
    try:
        convert, _ = _enabled_autograph()
    except (AttributeError, TypeError):
        return False
    return callable(convert)


#: Whether :class:`TracedOnceFunction` traces the engine's passes without AutoGraph and has
#: :func:`as_autograph_converts` convert the user's model alone. Where a TensorFlow lacks the
#: API that takes, the passes are traced with AutoGraph, model and all: the same traces, at the
#: cost of a slower first explain in each process.
CONVERTS_MODEL_ALONE = _converts_model_alone()


def as_autograph_converts(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` called the way a ``tf.function`` with AutoGraph calls it: converted, unless
    AutoGraph leaves its module alone (Keras models and layers are called as they are).

    :class:`TracedOnceFunction` traces the engine's own passes without AutoGraph, so the user's
    model is called through this: a plain function with Python ``if`` on tensors, or a legacy
    Keras (tf_keras) model whose ``call`` has one (its layers convert ``call`` only where
    AutoGraph is on), traces as it did when the whole pass was converted. Keras 3 converts no
    ``call`` either way. Where :data:`CONVERTS_MODEL_ALONE` is False, ``function`` itself: the
    pass around it is converted, and AutoGraph converts what it calls.
    """
    if not CONVERTS_MODEL_ALONE:
        return function
    convert, enabled = _enabled_autograph()
    return convert(function, enabled)


class _Trace(NamedTuple):
    """A concrete function, and whether a call's tensors, in ``tf.nest``'s order, are its inputs
    (see :func:`_flat_inputs`)."""

    concrete: Any
    flat: bool


#: Values a trace takes as constants whose type and repr say all of them: a signature (see
#: :func:`_signature`) holding only these pins down the trace's constants. (A numpy scalar is
#: none: ``tf.function`` takes it as a tensor.)
_PLAIN = (type(None), bool, int, float, str, enum.Enum, tf.dtypes.DType)


def _plain(value: Any) -> bool:
    """Whether every value in ``value`` that is not a tensor is one of :data:`_PLAIN`."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        return True
    if isinstance(value, dict):
        return all(_plain(item) for item in value.values())
    if isinstance(value, (tuple, list)):
        return all(_plain(item) for item in value)
    return isinstance(value, _PLAIN)


def _tensors(args: tuple[Any, ...]) -> list[Any]:
    """The tensors (and arrays) of ``args``, in ``tf.nest``'s order: the order in which a
    concrete function takes its inputs."""
    return [v for v in tf.nest.flatten(args) if isinstance(v, (np.ndarray, tf.Tensor))]


def _flat_inputs(concrete: Any, args: tuple[Any, ...]) -> bool:
    """Whether calls like ``args`` may go to ``concrete`` as a flat list of their tensors.

    The public call binds the arguments to the trace's signature, which cost about 0.3 ms per
    call, as much as a small model's gradients, to find what ``tf.nest`` order gives: the
    tensors, dicts by sorted key. That holds when the trace's constants are plain values (their
    repr, in the signature, then pins them down) and the tensors match the trace's inputs one
    to one, in dtype and rank; else the call binds.
    """
    call_flat = getattr(concrete, "_call_flat", None)
    if not callable(call_flat) or not _plain(args):
        return False
    inputs = concrete.inputs[: len(concrete.inputs) - len(concrete.captured_inputs)]
    tensors = _tensors(args)
    return len(inputs) == len(tensors) and all(
        tf.as_dtype(t.dtype) == i.dtype and len(t.shape) == i.shape.rank
        for t, i in zip(tensors, inputs, strict=True)
    )


class TracedOnceFunction:
    """A ``tf.function`` whose first trace for a call signature already leaves the batch open,
    and whose calls go straight to that trace.

    Left alone, ``reduce_retracing`` traces the first call for its exact shapes and traces again
    when the next batch or span has another size: every new explainer paid two traces of the
    same function. Tracing first for the relaxed signature makes every later size reuse it.

    A call then runs the concrete function of its signature directly: ``tf.function``'s own
    dispatch (matching the arguments' types against its traces) cost more than a small model's
    gradients, about 1.2 ms per call on 2 cores, where a one-sample explain of a small model
    takes 3 ms. Where the trace's constants are plain values, the call hands it the arguments'
    tensors as they are (see :func:`_flat_inputs`). Otherwise it binds them to the trace's
    signature, and should the concrete function refuse them (a value its trace took as a
    constant differs beyond what its repr shows), the call goes through ``tf.function``, which
    traces anew if it must.

    The function is traced without AutoGraph: the engine's passes use ``tf.while_loop`` and
    Python control flow on Python values only, and converting them cost 1.0 to 1.3 s of the
    first explain in every process (``benchmarks/first_explain.py``; AutoGraph's conversions are
    cached per process, not per explainer). The user's model, which AutoGraph converted before,
    is called through :func:`as_autograph_converts`; with AutoGraph, on a TensorFlow where
    :data:`CONVERTS_MODEL_ALONE` is False.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = tf.function(
            function, reduce_retracing=True, autograph=not CONVERTS_MODEL_ALONE
        )
        self._traces: dict[Any, _Trace] = {}
        self._lock = threading.Lock()

    def concrete(self, *args: Any) -> Any:
        """The concrete function that serves calls like ``args`` (traced now if need be)."""
        return self._trace(args).concrete

    def _trace(self, args: tuple[Any, ...]) -> _Trace:
        key = _signature(args)
        trace = self._traces.get(key)
        if trace is None:
            with self._lock:
                trace = self._traces.get(key)
                if trace is None:
                    specs = tf.nest.map_structure(_relaxed_spec, args)
                    concrete = self._function.get_concrete_function(*specs)
                    trace = _Trace(concrete, _flat_inputs(concrete, args))
                    self._traces[key] = trace
        return trace

    def __call__(self, *args: Any) -> Any:
        concrete, flat = self._trace(args)
        if flat:
            tensors = [tf.convert_to_tensor(t) for t in _tensors(args)]
            return concrete._call_flat(tensors, concrete.captured_inputs)
        try:
            return concrete(*args)
        except (TypeError, ValueError):
            return self._function(*args)
