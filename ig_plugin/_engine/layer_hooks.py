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

A layer may be called more than once in one pass of the model: GPT-2 ties its token embedding to
its output projection, so the embedding runs as a lookup of the ids and again, later, as a matrix
product with the last hidden states. Recording and substituting act on the first call of each
pass, the lookup; later calls run unchanged. :func:`attributed_call` refuses what that would get
wrong: a layer applied again to inputs like its first (a shared layer on several inputs).
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
    """A call's first argument, also when given by keyword (``inputs=``, or another name as
    Hugging Face layers take ``input_ids=``)."""
    if args:
        return args[0]
    return kwargs["inputs"] if "inputs" in kwargs else next(iter(kwargs.values()), None)


def _with_layer_inputs(args: tuple, kwargs: dict, inputs: Any) -> tuple[tuple, dict]:
    if args:
        return (inputs, *args[1:]), kwargs
    return args, {**kwargs, "inputs": inputs}


@dataclass(frozen=True)
class LayerCall:
    """One call of a layer in a traced pass: the shapes and dtypes of its first argument, and
    the recorded value (its inputs or its outputs)."""

    inputs: tuple[tuple[tuple[int | None, ...] | None, str], ...]
    value: Any


def _signature(inputs: Any) -> tuple[tuple[tuple[int | None, ...] | None, str], ...]:
    tensors = [t for t in tf.nest.flatten(inputs) if tf.is_tensor(t)]
    return tuple(
        (None if t.shape.rank is None else tuple(t.shape.as_list()), t.dtype.name) for t in tensors
    )


def _described(signature: tuple) -> str:
    return ", ".join(f"shape {shape} {dtype}" for shape, dtype in signature)


@contextlib.contextmanager
def recording(layer: Any, to_inputs: bool) -> Iterator[list[LayerCall]]:
    """Record every call of the layer in the yielded list, with its inputs (``to_inputs``) or
    outputs as the value."""
    calls: list[LayerCall] = []

    def record(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        inputs = _layer_inputs(args, kwargs)
        outputs = original(*args, **kwargs)
        value = inputs if to_inputs else outputs
        calls.append(LayerCall(_signature(inputs), value))
        return outputs

    with hooked(layer, record):
        yield calls


def attributed_call(layer: Any, calls: Sequence[LayerCall]) -> LayerCall:
    """The call that is attributed to: the first of the pass.

    Raises
    ------
    ValueError
        The layer was not called, or a later call took inputs of the same shapes and dtypes as
        the first: a shared layer applied to several inputs (branches of a siamese model, steps
        of a recurrence), whose other calls attributing to the first would silently leave out.
        A later call on other inputs (a tied embedding's output projection, which takes hidden
        states where the lookup took ids) runs unchanged.
    """
    if not calls:
        raise ValueError(
            f"`layer` ({layer.name}) is not called when the model runs, so nothing can be "
            "attributed to it: pass a layer on the path from the inputs to the output."
        )
    again = [i for i, call in enumerate(calls[1:], start=2) if call.inputs == calls[0].inputs]
    if again:
        raise ValueError(
            f"`layer` ({layer.name}) is called {len(calls)} times per forward pass of the model, "
            f"and call {again[0]} takes inputs like the first ({_described(calls[0].inputs)}): "
            "a layer shared by several inputs. Attributing to its "
            "first call would leave the others out, so it must be called once per pass (or, "
            "like a tied embedding, again on inputs of another shape or dtype). Attribute to a "
            "layer before the shared one, or to the model inputs."
        )
    return calls[0]


@contextlib.contextmanager
def substituting(
    layer: Any, to_inputs: bool, structure: Any, values: Sequence[tf.Tensor]
) -> Iterator[None]:
    """Make the layer's first call in the block take ``values`` as its inputs (``to_inputs``) or
    give them as its outputs; later calls run unchanged (see the module docstring).

    ``structure`` is the nesting of the recorded inputs or outputs that ``values`` flatten. A
    block holds one call of the model, in one thread's trace, so counting its calls is safe.
    """
    replacement = tf.nest.pack_sequence_as(structure, list(values))
    seen = [0]

    def substitute(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        if seen[0] > 1:
            return original(*args, **kwargs)
        if to_inputs:
            args, kwargs = _with_layer_inputs(args, kwargs, replacement)
            return original(*args, **kwargs)
        return replacement

    with hooked(layer, substitute):
        yield
