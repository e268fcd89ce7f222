"""Hooks on a layer's ``call`` that act only inside the trace that set them.

The explainer reads a layer's inputs or outputs, or replaces them, while a ``tf.function`` is
being traced: the traced graph keeps the hook's effect. A model is shared, though: a server may
call it from other threads while an explainer traces, two explainers may hook one layer at once,
and Keras may run the layer in a scratch graph of its own to build an unbuilt model.

So a hooked layer gets one dispatcher as its instance ``call`` while any hook on it is active (in
any thread), and the dispatcher hands a call to a hook only if it comes from the thread that set
the hook and runs in the graph that thread was tracing when it did. Every other call goes to the
layer's own ``call`` unchanged. The last hook to end puts back what the layer had: nothing stays
on it, whatever happens, also when a hook's block raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

_MISSING = object()

#: ``hook(original_call, *args, **kwargs)``: what a hooked call does instead of ``original_call``.
Hook = Callable[..., Any]


@dataclass
class _Dispatcher:
    """The ``call`` installed on a layer while hooks on it are active."""

    layer: Any
    original: Callable[..., Any]  # the layer's call as it was when the first hook began
    previous: Any  # the layer's instance attribute ``call``, or _MISSING (the usual case)
    users: int = 0
    call: Callable[..., Any] = field(init=False)

    def __post_init__(self) -> None:
        key, original = id(self.layer), self.original

        def call(*args: Any, **kwargs: Any) -> Any:
            active = _thread_hooks().get(key)
            if active is not None and active[0] is tf.compat.v1.get_default_graph():
                return active[1](original, *args, **kwargs)
            return original(*args, **kwargs)

        self.call = call


# Guards _dispatchers and the install/remove of dispatchers; never held while a model runs.
_lock = threading.Lock()
_dispatchers: dict[int, _Dispatcher] = {}
_local = threading.local()


def _thread_hooks() -> dict[int, tuple[Any, Hook]]:
    """This thread's active hooks: ``id(layer) -> (graph, hook)``."""
    hooks = getattr(_local, "hooks", None)
    if hooks is None:
        hooks = _local.hooks = {}
    return hooks


def _acquire(layer: Any) -> None:
    with _lock:
        dispatcher = _dispatchers.get(id(layer))
        if dispatcher is None:
            dispatcher = _Dispatcher(layer, layer.call, layer.__dict__.get("call", _MISSING))
            _dispatchers[id(layer)] = dispatcher
            # object.__setattr__ skips Keras' attribute tracking: the hook is not part of the model.
            object.__setattr__(layer, "call", dispatcher.call)
        dispatcher.users += 1


def _release(layer: Any) -> None:
    with _lock:
        dispatcher = _dispatchers[id(layer)]
        dispatcher.users -= 1
        if dispatcher.users == 0:
            del _dispatchers[id(layer)]
            if dispatcher.previous is _MISSING:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", dispatcher.previous)


@contextlib.contextmanager
def hooked(layer: Any, hook: Hook) -> Iterator[None]:
    """Inside the block, this thread's calls of ``layer`` in the current graph go to ``hook``.

    ``hook`` receives the layer's own ``call`` and the call's arguments. Calls from other threads
    or other graphs (Keras' scratch graphs, another explainer's trace) are not hooked.
    """
    key, hooks = id(layer), _thread_hooks()
    _acquire(layer)
    outer = hooks.get(key)
    hooks[key] = (tf.compat.v1.get_default_graph(), hook)
    try:
        yield
    finally:
        if outer is None:
            del hooks[key]
        else:
            hooks[key] = outer
        _release(layer)


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

    def record(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if to_inputs:
            calls.append(_layer_inputs(args, kwargs))
        outputs = original(*args, **kwargs)
        if not to_inputs:
            calls.append(outputs)
        return outputs

    with hooked(layer, record):
        yield calls


@contextlib.contextmanager
def substituting(
    layer: Any, to_inputs: bool, structure: Any, values: Sequence[tf.Tensor]
) -> Iterator[None]:
    """Make the layer take ``values`` as its inputs (``to_inputs``) or give them as its outputs.

    ``structure`` is the nesting of the recorded inputs or outputs that ``values`` flatten.
    """
    replacement = tf.nest.pack_sequence_as(structure, list(values))

    def substitute(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if to_inputs:
            args, kwargs = _with_layer_inputs(args, kwargs, replacement)
            return original(*args, **kwargs)
        return replacement

    with hooked(layer, substitute):
        yield
