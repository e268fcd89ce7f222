"""Temporary hooks on a layer's ``call``: read its inputs or outputs, or replace them.

A hook lives only inside a ``with`` block, which runs while a ``tf.function`` is being traced:
the traced graph keeps the hook's effect, the layer gets its own ``call`` back in ``finally``,
whatever happens. So the user's model is never left patched, and two explainers on one model
do not see each other's hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

_MISSING = object()


@contextlib.contextmanager
def _replaced_call(layer: Any, make_call: Callable[[Callable[..., Any]], Callable[..., Any]]):
    """Give ``layer`` the ``call`` that ``make_call(original_call)`` returns, inside the block."""
    original = layer.call
    previous = layer.__dict__.get("call", _MISSING)
    # object.__setattr__ skips Keras' attribute tracking: the hook is not a part of the model.
    object.__setattr__(layer, "call", make_call(original))
    try:
        yield
    finally:
        if previous is _MISSING:
            object.__delattr__(layer, "call")
        else:
            object.__setattr__(layer, "call", previous)


def _layer_inputs(args: tuple, kwargs: dict) -> Any:
    return args[0] if args else kwargs["inputs"]


def _with_layer_inputs(args: tuple, kwargs: dict, inputs: Any) -> tuple[tuple, dict]:
    if args:
        return (inputs, *args[1:]), kwargs
    return args, {**kwargs, "inputs": inputs}


@contextlib.contextmanager
def recording(layer: Any, to_inputs: bool) -> Iterator[list]:
    """Record the layer's inputs (``to_inputs``) or outputs at each call, in the yielded list."""
    calls: list = []

    def make_call(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if to_inputs:
                calls.append(_layer_inputs(args, kwargs))
            outputs = original(*args, **kwargs)
            if not to_inputs:
                calls.append(outputs)
            return outputs

        return call

    with _replaced_call(layer, make_call):
        yield calls


@contextlib.contextmanager
def substituting(layer: Any, to_inputs: bool, structure: Any, values: Sequence[tf.Tensor]):
    """Make the layer take ``values`` as its inputs (``to_inputs``) or give them as its outputs.

    ``structure`` is the nesting of the recorded inputs or outputs that ``values`` flatten.
    """
    replacement = tf.nest.pack_sequence_as(structure, list(values))

    def make_call(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if to_inputs:
                args, kwargs = _with_layer_inputs(args, kwargs, replacement)
                return original(*args, **kwargs)
            return replacement

        return call

    with _replaced_call(layer, make_call):
        yield
