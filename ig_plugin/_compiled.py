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
from ig_plugin._inputs import Inputs, Layout
from ig_plugin._layer_hooks import recording, substituting
from ig_plugin._outputs import OutputPick, select_output
from ig_plugin._path_math import chunk_points, scale, settle, weighted_sums
from ig_plugin._progress import report
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
        The real model inputs, which a layer explainer feeds the model beside the path points.
    """

    starts: tuple[np.ndarray, ...]
    ends: tuple[np.ndarray, ...]
    model_inputs: tuple[np.ndarray, ...]


class Span(NamedTuple):
    """The tensors of one span of samples, as the compiled gradient loop takes them."""

    starts: tuple
    ends: tuple
    model_inputs: tuple
    per_sample: dict[str, tf.Tensor]
    shared: dict[str, Any]  # passed to every call unchanged (Python values are static)
    target: tf.Tensor | None


class Steps(NamedTuple):
    """The quadrature rule and the chunk size, as tensors: one trace serves every rule."""

    alphas: tf.Tensor
    weights: tf.Tensor
    chunk_size: tf.Tensor


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
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
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
            return predictions, baselines, arrays
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
        return predictions, tuple(starts), tuple(ends)

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

    def _chunk_sums(
        self,
        span: Span,
        steps: Steps,
        lo: tf.Tensor,
        hi: tf.Tensor,
        call: ModelCall,
        kind: TargetKind,
    ) -> list[tf.Tensor]:
        """One gradient batch: the pairs ``lo`` to ``hi - 1``, summed per sample.

        Returns per attributed tensor ``(n_segments, *feature_shape)``: row ``j`` is the sum of
        ``weight * gradient`` over the chunk's pairs of sample ``lo // n_steps + j``.
        """
        n_steps = tf.size(steps.alphas, out_type=tf.int64)
        pairs = tf.range(lo, hi)
        # Pair p is step p % n_steps of sample p // n_steps: sample-major, so sorted by sample.
        sample_ids, step_ids = pairs // n_steps, pairs % n_steps
        first = lo // n_steps
        segments = sample_ids - first
        n_segments = (hi - 1) // n_steps - first + 1
        # span.starts, span.ends: per attributed tensor (n, *feature_shape), resident; the
        # chunk's path points are built here, next to the model: (n_pairs, *feature_shape).
        offset, samples = lo - first * n_steps, slice(first, first + n_segments)
        points = [
            chunk_points(start[samples], end[samples], steps.alphas, offset, segments, step_ids)
            for start, end in zip(span.starts, span.ends, strict=True)
        ]
        kwargs = {
            **{k: tf.gather(v, sample_ids) for k, v in span.per_sample.items()},
            **span.shared,
        }
        target_rows = None if span.target is None else tf.gather(span.target, sample_ids)
        with tf.GradientTape() as tape:
            tape.watch(points)
            if self.layer is None:
                outputs = self._call(points, call, kwargs)
            else:
                rows = [tf.gather(x, sample_ids) for x in span.model_inputs]
                structure = self._structures[call.to_inputs]
                with substituting(self.layer, call.to_inputs, structure, points):
                    outputs = self._call(rows, call, kwargs)
            selected = select_output(outputs, self.model, call.pick)
            scalars = select_scalar(kind, selected, target_rows)
        # A tensor that does not reach the output has a zero gradient, not None.
        grads = tape.gradient(scalars, points, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        pair_weights = tf.gather(steps.weights, step_ids)
        return [weighted_sums(g, segments, n_segments, pair_weights) for g in grads]

    def _gradient_step(
        self,
        span: Span,
        steps: Steps,
        call: ModelCall,
        kind: TargetKind,
        progress: tf.Tensor | None,
    ) -> list[tf.Tensor]:
        """The attributions of the samples of ``span``, in one graph loop.

        Their paths' pairs are taken ``steps.chunk_size`` at a time, one gradient batch per
        chunk: one compiled call for all of them, where a Python-driven loop paid more for
        dispatching each chunk than a small model takes to run it. A sample's weighted sum is
        carried (float64) while its path goes on into the next chunk; once finished it is scaled
        by ``end - start`` and kept in the attributed tensor's dtype (a ``TensorArray``), so
        memory is the chunk plus the attributions. With a ``progress`` token, each chunk reports
        its points (:mod:`ig_plugin._progress`). Returns per attributed tensor
        ``(n_rows, *feature_shape)``.
        """
        n_steps = tf.size(steps.alphas, out_type=tf.int64)
        stop = tf.shape(span.starts[0], out_type=tf.int64)[0] * n_steps
        n_chunks = (stop + steps.chunk_size - 1) // steps.chunk_size

        def body(chunk: tf.Tensor, carries: tuple, finished: tuple) -> tuple:
            lo = chunk * steps.chunk_size
            hi = tf.minimum(lo + steps.chunk_size, stop)
            sums = self._chunk_sums(span, steps, lo, hi, call, kind)
            lowest = lo // n_steps
            new_carries, new_finished = [], []
            for part, carry, start, end, rows in zip(
                sums, carries, span.starts, span.ends, finished, strict=True
            ):
                done, carry = settle(tf.cast(part, tf.float64), carry, hi % n_steps == 0)
                samples = slice(lowest, lowest + tf.shape(done, out_type=tf.int64)[0])
                new_finished.append(
                    rows.write(tf.cast(chunk, tf.int32), scale(done, start[samples], end[samples]))
                )
                new_carries.append(carry)
            reports = [] if progress is None else [report(progress, hi - lo)]
            with tf.control_dependencies(reports):
                return chunk + 1, tuple(new_carries), tuple(new_finished)

        carries = tuple(tf.zeros(tf.shape(start)[1:], tf.float64) for start in span.starts)
        finished = tuple(
            tf.TensorArray(
                start.dtype,
                size=tf.cast(n_chunks, tf.int32),
                infer_shape=False,
                element_shape=tf.TensorShape([None]).concatenate(start.shape[1:]),
            )
            for start in span.starts
        )
        # One chunk at a time: parallel iterations would hold several chunks in memory.
        _, _, finished = tf.while_loop(
            lambda chunk, *_: chunk < n_chunks,
            body,
            (tf.constant(0, tf.int64), carries, finished),
            parallel_iterations=1,
        )
        # The last chunk ends with the last sample's path, so no sum is left open.
        return [rows.concat() for rows in finished]

    def attribution_fn(
        self,
        ends: PathEnds,
        kwargs: ForwardKwargs,
        rule: TargetRule,
        call: ModelCall,
        quadrature: tuple[np.ndarray, np.ndarray],
        chunk_size: int,
        progress: tf.Tensor | None = None,
    ) -> AttributeFn:
        """An ``attribute(first, stop)`` for :func:`ig_plugin._spans.attribute_in_spans`.

        ``ends`` are the path ends of the attributed tensors (see :class:`PathEnds`);
        ``quadrature`` the rule's ``(alphas, weights)``; ``chunk_size`` the most path points per
        gradient batch; ``progress`` a token from :func:`ig_plugin._progress.reporting`. Each
        call moves only its samples' rows to TensorFlow, so a span bounds that copy too.
        """
        alphas, weights = quadrature
        steps = Steps(tf.constant(alphas), tf.constant(weights), tf.constant(chunk_size, tf.int64))
        model_inputs = ends.model_inputs if self.layer is not None else ()

        def attribute(first: int, stop: int) -> list[np.ndarray]:
            rows = slice(first, stop)
            span = Span(
                starts=tuple(tf.convert_to_tensor(a[rows]) for a in ends.starts),
                ends=tuple(tf.convert_to_tensor(a[rows]) for a in ends.ends),
                model_inputs=tuple(tf.convert_to_tensor(a[rows]) for a in model_inputs),
                per_sample={k: tf.convert_to_tensor(v[rows]) for k, v in kwargs.per_sample.items()},
                shared=kwargs.shared,
                target=None if rule.target is None else tf.convert_to_tensor(rule.target[rows]),
            )
            attributions = self._gradients(span, steps, call, rule.kind, progress)
            return [a.numpy() for a in attributions]

        return attribute
