"""The TensorFlow side: compiled forward passes and gradient steps for one model.

This is the one module that runs the model. Its passes are ``tf.function``s made once per
explainer and model (``reduce_retracing`` lets one trace serve every chunk size and every N). The
forward passes take their data in batches of ``internal_batch_size`` samples; the gradient pass
loops over chunks of ``internal_batch_size`` path points inside the graph, so memory is bounded
by the chunk plus the inputs and the attributions themselves.

The gradient step is one function built two ways: without a layer the path points are the model
inputs; with a layer the model gets the real inputs and the layer's outputs (or inputs) are
replaced by the path points, so branches that bypass the layer see the real inputs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from ig_plugin._forward_kwargs import ForwardKwargs
from ig_plugin._gradient_loop import Plan, integrate
from ig_plugin._inputs import Inputs, Layout
from ig_plugin._layer_hooks import recording, substituting
from ig_plugin._outputs import OutputPick, select_output
from ig_plugin._spans import AttributeFn
from ig_plugin._targets import TargetKind, TargetRule, select_scalar


class ModelCall(NamedTuple):
    """How one explain calls the model: the same in every pass, and static in every trace.

    A NamedTuple of plain values: compiled functions that take it trace once per distinct call,
    not once per ``explain``.

    Attributes
    ----------
    layout
        How the input tensors are packed for the model (one, a list, or a dict by name).
    pick
        Which output tensor to explain, for models with several.
    to_inputs
        With a layer: its inputs, not its outputs, are recorded or replaced.
    """

    layout: Layout
    pick: OutputPick = None
    to_inputs: bool = False


class PathEnds(NamedTuple):
    """Where the paths of all samples start and end, on the host (numpy).

    Attributes
    ----------
    starts, ends
        Per attributed tensor ``(N, *feature_shape)``: the baselines and X, or with a layer its
        recorded outputs (inputs) at the baselines and at X.
    model_inputs
        With a layer, the real model inputs, fed to the model beside the path points. Empty
        without one: the path points are then the model inputs.
    """

    starts: tuple[np.ndarray, ...]
    ends: tuple[np.ndarray, ...]
    model_inputs: tuple[np.ndarray, ...]


class Span(NamedTuple):
    """The tensors of one span of samples, as the compiled gradient loop takes them.

    ``starts`` are the span's rows of the path starts, or a whole table of start rows for drawn
    pairs (Expected Gradients).
    """

    starts: tuple
    ends: tuple
    model_inputs: tuple
    per_sample: dict[str, tf.Tensor]
    shared: dict[str, Any]  # passed to every call unchanged (Python values are static)
    target: tf.Tensor | None


def _relaxed_spec(value: Any) -> Any:
    """A tensor's spec with its leading (batch) axis left open; other values as they are."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        shape = list(value.shape)
        return tf.TensorSpec(shape[:0] if not shape else [None, *shape[1:]], value.dtype)
    return value


class _TracedOnceFunction:
    """A ``tf.function`` whose first trace for a call signature already leaves the batch open.

    Left alone, ``reduce_retracing`` traces the first call for its exact shapes and traces again
    when the next batch or span has another size: every new explainer paid two traces of the
    same function. Tracing first for the relaxed signature makes every later size reuse it.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = tf.function(function, reduce_retracing=True)
        self._traced: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        specs = tf.nest.map_structure(_relaxed_spec, args)
        key = repr(specs)
        if key not in self._traced:
            with self._lock:
                if key not in self._traced:
                    self._function.get_concrete_function(*specs)
                    self._traced.add(key)
        return self._function(*args)


class CompiledModel:
    """Compiled passes of a model called as ``model(inputs, **kwargs)``.

    Parameters
    ----------
    model
        A Keras model (or any callable on tensors that TensorFlow can differentiate).
    layer
        The layer whose outputs or inputs are attributed, or None for the model inputs.
    """

    def __init__(self, model: Callable[..., Any], layer: Any = None) -> None:
        self.model = model
        self.layer = layer
        # Nesting of the layer's recorded outputs (False) or inputs (True), set while tracing.
        self._structures: dict[bool, Any] = {}
        self._forward = _TracedOnceFunction(self._forward_step)
        self._gradients = _TracedOnceFunction(self._gradient_step)

    def _call(self, inputs: Sequence[tf.Tensor], call: ModelCall, kwargs: dict[str, Any]) -> Any:
        return self.model(call.layout.pack(inputs), **kwargs)

    # -- forward passes ------------------------------------------------------------------------

    def _forward_step(
        self,
        inputs: tuple,
        call: ModelCall,
        kwargs: dict[str, Any],
        mode: str,
        layer_values: tuple,
    ) -> Any:
        if mode == "plain":
            return self._call(inputs, call, kwargs), []
        if mode == "substitute":
            structure = self._structures[call.to_inputs]
            with substituting(self.layer, call.to_inputs, structure, layer_values):
                return self._call(inputs, call, kwargs), []
        with recording(self.layer, call.to_inputs) as calls:
            outputs = self._call(inputs, call, kwargs)
        if len(calls) != 1:
            raise ValueError(
                f"`layer` ({self.layer.name}) must be called exactly once per forward pass of the "
                f"model to be attributed to. It was called {len(calls)} times."
            )
        # Only the nesting is kept: the recorded tensors belong to this trace's graph.
        self._structures[call.to_inputs] = tf.nest.map_structure(lambda _: 0, calls[0])
        return outputs, tf.nest.flatten(calls[0])

    def forward(
        self,
        arrays: Sequence[np.ndarray],
        call: ModelCall,
        kwargs: ForwardKwargs,
        batch_size: int,
        mode: str = "plain",
        layer_values: Sequence[np.ndarray] = (),
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Run the model on ``arrays`` in batches of ``batch_size`` samples.

        ``mode`` is ``"plain"``; ``"record"``, which also returns the layer's outputs (or inputs,
        with ``call.to_inputs``) as flat arrays; or ``"substitute"``, which replaces them with
        ``layer_values``.

        Returns
        -------
        outputs, layer_values
            The model's output (the one ``call.pick`` names, for a model with several), and the
            recorded layer values (empty unless recording).

        Raises
        ------
        ValueError
            The model has several outputs and ``pick`` names none of them.
        """
        n_samples = arrays[0].shape[0]
        outputs, recorded = [], []
        for first in range(0, n_samples, batch_size):
            rows = slice(first, first + batch_size)
            batch_kwargs = {**{k: v[rows] for k, v in kwargs.per_sample.items()}, **kwargs.shared}
            output, values = self._forward(
                tuple(a[rows] for a in arrays),
                call,
                batch_kwargs,
                mode,
                tuple(v[rows] for v in layer_values),
            )
            outputs.append(select_output(output, self.model, call.pick).numpy())
            recorded.append([v.numpy() for v in values])
        return np.concatenate(outputs), [
            np.concatenate(parts) for parts in zip(*recorded, strict=True)
        ]

    def path_ends(
        self,
        inputs: Inputs,
        baselines: tuple[np.ndarray, ...],
        kwargs: ForwardKwargs,
        batch_size: int,
        call: ModelCall,
    ) -> tuple[np.ndarray, PathEnds]:
        """The model outputs on X, and where the paths start and end.

        Without a layer the paths run between the baselines and the inputs; with one, between
        the layer's outputs (inputs, with ``call.to_inputs``) on the baselines and on X.

        Raises
        ------
        TypeError
            The layer's recorded values are not floats (e.g. the token ids an Embedding takes).
        ValueError
            With a layer, the model cannot run on integer X or baselines (e.g. ids outside an
            embedding's vocabulary).
        """
        arrays = inputs.arrays
        if self.layer is None:
            predictions, _ = self.forward(arrays, call, kwargs, batch_size)
            return predictions, PathEnds(baselines, arrays, ())
        predictions, ends = self._record(arrays, call, kwargs, batch_size, "X")
        _, starts = self._record(baselines, call, kwargs, batch_size, "baselines")
        side = "inputs" if call.to_inputs else "outputs"
        for value in ends:
            if value.dtype.kind != "f":
                raise TypeError(
                    f"The {side} of `layer` ({self.layer.name}) have dtype {value.dtype}, which "
                    "cannot be interpolated; attribute to a layer whose "
                    f"{side} are floats (attribute_to_layer_inputs={not call.to_inputs} may do)."
                )
        return predictions, PathEnds(tuple(starts), tuple(ends), arrays)

    def _record(
        self,
        arrays: Sequence[np.ndarray],
        call: ModelCall,
        kwargs: ForwardKwargs,
        batch_size: int,
        name: str,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        try:
            return self.forward(arrays, call, kwargs, batch_size, "record")
        except tf.errors.InvalidArgumentError as error:
            if not any(a.dtype.kind in "iub" for a in arrays):
                raise
            # Integer inputs reach a lookup (an embedding's gather) that refuses some value.
            raise ValueError(
                f"The model cannot run on `{name}`: {error.message.strip().splitlines()[0]} "
                "(integer inputs must be valid ids, e.g. within an embedding's vocabulary)."
            ) from None

    # -- gradients -----------------------------------------------------------------------------

    def _gradient_step(
        self,
        span: Span,
        plan: Plan,
        chunk_size: tf.Tensor,
        call: ModelCall,
        kind: TargetKind,
        many: bool,
        progress: tf.Tensor | None,
    ) -> list[tf.Tensor]:
        """The attributions of the samples of ``span``, in one graph loop
        (:func:`ig_plugin._gradient_loop.integrate`): one compiled call for all their chunks,
        where a Python-driven loop paid more for dispatching each chunk than a small model
        takes to run it."""

        def scalars_at(points: list[tf.Tensor], sample_ids: tf.Tensor) -> tf.Tensor:
            kwargs = {
                **{k: tf.gather(v, sample_ids) for k, v in span.per_sample.items()},
                **span.shared,
            }
            if self.layer is None:
                outputs = self._call(points, call, kwargs)
            else:
                # The model gets the real inputs; the layer's values are the path points.
                rows = [tf.gather(x, sample_ids) for x in span.model_inputs]
                structure = self._structures[call.to_inputs]
                with substituting(self.layer, call.to_inputs, structure, points):
                    outputs = self._call(rows, call, kwargs)
            target_rows = None if span.target is None else tf.gather(span.target, sample_ids)
            selected = select_output(outputs, self.model, call.pick)
            return select_scalar(kind, selected, target_rows, many)

        n_targets = None
        if many and span.target is not None:
            n_targets = tf.shape(span.target, out_type=tf.int64)[1]
        return integrate(span.starts, span.ends, plan, chunk_size, scalars_at, n_targets, progress)

    def attribution_fn(
        self,
        ends: PathEnds,
        kwargs: ForwardKwargs,
        rule: TargetRule,
        call: ModelCall,
        plan: Plan | Callable[[int, int], Plan],
        chunk_size: int,
        progress: tf.Tensor | None = None,
    ) -> AttributeFn:
        """An ``attribute(first, stop)`` for :func:`ig_plugin._spans.attribute_in_spans`.

        ``ends`` are the path ends of the attributed tensors (see :class:`PathEnds`). ``plan`` is
        a :class:`~ig_plugin._gradient_loop.SharedSteps` for every span, or a function giving
        the :class:`~ig_plugin._gradient_loop.DrawnPairs` of samples ``first`` to ``stop - 1``
        (whose ``ends.starts`` are then a table of start rows, shared by all spans).
        ``chunk_size`` is the most pairs per gradient batch; ``progress`` a token from
        :func:`ig_plugin._progress.reporting`. Each call moves only its samples' rows to
        TensorFlow, so a span bounds that copy too.
        """
        chunk = tf.constant(chunk_size, tf.int64)
        model_inputs = ends.model_inputs
        # Shared steps: each span takes its rows of the starts; drawn pairs: the whole table.
        table = None if isinstance(plan, tuple) else tuple(map(tf.convert_to_tensor, ends.starts))

        def attribute(first: int, stop: int) -> list[np.ndarray]:
            rows = slice(first, stop)
            span_plan = plan if isinstance(plan, tuple) else plan(first, stop)
            span = Span(
                starts=table or tuple(tf.convert_to_tensor(a[rows]) for a in ends.starts),
                ends=tuple(tf.convert_to_tensor(a[rows]) for a in ends.ends),
                model_inputs=tuple(tf.convert_to_tensor(a[rows]) for a in model_inputs),
                per_sample={k: tf.convert_to_tensor(v[rows]) for k, v in kwargs.per_sample.items()},
                shared=kwargs.shared,
                target=None if rule.target is None else tf.convert_to_tensor(rule.target[rows]),
            )
            tensors = tf.nest.map_structure(tf.convert_to_tensor, span_plan)
            attributions = self._gradients(
                span, tensors, chunk, call, rule.kind, rule.many, progress
            )
            return [a.numpy() for a in attributions]

        return attribute
