"""The TensorFlow side: compiled forward passes and gradient steps for one model.

This is the one module that runs the model. Its passes are ``tf.function``s made once per
explainer and model (``reduce_retracing`` lets one trace serve every chunk size and every N). The
forward passes take their data in batches of ``internal_batch_size`` samples; the gradient pass
loops over chunks of ``internal_batch_size`` path points inside the graph, so memory is bounded
by the chunk plus the inputs and the attributions themselves.

The explained outputs at path points are built two ways: without a layer the path points are the
model inputs; with a layer the model gets the real inputs and the layer's outputs (or inputs) are
replaced by the path points, so branches that bypass the layer see the real inputs. Two entries
differentiate them: :meth:`CompiledModel.attribution_fn`, the whole integral of any plan in one
compiled loop, and :meth:`CompiledModel.gradients_at`, raw gradients at points the host chooses.
:meth:`CompiledModel.scores_at` gives the explained outputs alone at such points (the evaluation
metrics' perturbed inputs), without a gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from ig_plugin._engine.layer_hooks import attributed_call, recording, substituting
from ig_plugin._engine.loop import gradients, integrate
from ig_plugin._engine.memory import PointCost, row_bytes
from ig_plugin._engine.plans import Plan, SpanPlans
from ig_plugin._engine.select import select, select_scalar
from ig_plugin._engine.spans import AttributeFn, span_length
from ig_plugin._engine.tracing import TracedOnceFunction, as_autograph_converts
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.request import ModelCall
from ig_plugin._request.rules import Rule, TargetKind

#: A rule's kind: one :class:`TargetKind`, or one per head (static in every trace).
Kinds = TargetKind | tuple[TargetKind, ...]


def _rows_of(target: Any, rows: Any, convert: Callable[[Any], Any] = np.asarray) -> Any:
    """Rows ``rows`` of a rule's targets: an array, one per head, or None."""
    if target is None:
        return None
    return tf.nest.map_structure(lambda t: convert(t[rows]), target)


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
    target: Any  # a tensor, one per head (a tuple), or None


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
        self._forward = TracedOnceFunction(self._forward_step)
        self._gradients = TracedOnceFunction(self._gradient_step)
        self._raw = TracedOnceFunction(self._raw_step)
        self._scores = TracedOnceFunction(self._score_step)

    def _call(self, inputs: Sequence[tf.Tensor], call: ModelCall, kwargs: dict[str, Any]) -> Any:
        # Wrapped per trace, not once: a wrapper kept on self would hold the model itself where
        # ``model`` is a weak proxy (the metrics' shared passes), and keep it alive.
        model = as_autograph_converts(self.model)  # the passes themselves are not converted
        return model(call.layout.pack_for_model(inputs), **kwargs)

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
        # The first call is attributed (a tied embedding's later call runs unchanged).
        value = attributed_call(self.layer, calls).value
        # Only the nesting is kept: the recorded tensors belong to this trace's graph.
        self._structures[call.to_inputs] = tf.nest.map_structure(lambda _: 0, value)
        return outputs, tf.nest.flatten(value)

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
            The model's output (the one ``call.pick`` names, for a model with several; a tuple of
            them for several heads; transformed as ``call.transform`` says), and the recorded
            layer values (empty unless recording).

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
            outputs.append(tf.nest.map_structure(np.asarray, select(output, self.model, call)))
            recorded.append([v.numpy() for v in values])
        joined = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outputs)
        return joined, [np.concatenate(parts) for parts in zip(*recorded, strict=True)]

    def point_cost(
        self, arrays: Sequence[np.ndarray], call: ModelCall, kwargs: ForwardKwargs
    ) -> PointCost:
        """What one path point costs in memory, estimated from the traced forward pass on rows
        like ``arrays``' (traced now if need be; nothing runs): see
        :mod:`ig_plugin._engine.memory`. The point's size is a row of ``arrays``; with a layer
        the caller replaces it by a row of the layer's values once they are recorded."""
        mode = "plain" if self.layer is None else "record"
        rows = tuple(a[:1] for a in arrays)
        batch_kwargs = {**{k: v[:1] for k, v in kwargs.per_sample.items()}, **kwargs.shared}
        concrete = self._forward.concrete(rows, call, batch_kwargs, mode, ())
        return PointCost(row_bytes(concrete.graph), sum(row.nbytes for row in rows))

    def path_ends(
        self,
        arrays: tuple[np.ndarray, ...],
        baselines: tuple[np.ndarray, ...],
        kwargs: ForwardKwargs,
        batch_size: int,
        call: ModelCall,
    ) -> tuple[np.ndarray, PathEnds]:
        """The model outputs on X, and where the paths start and end.

        Without a layer the paths run between the baselines and the inputs; with one, between
        the layer's outputs (inputs, with ``call.to_inputs``) on the baselines and on X.

        ``arrays`` are X's arrays; ``baselines`` one start per sample (IG) or a table of start
        rows (Expected Gradients' background).

        Raises
        ------
        TypeError
            The layer's recorded values are not floats (e.g. the token ids an Embedding takes).
        ValueError
            With a layer, the model cannot run on integer X or baselines (e.g. ids outside an
            embedding's vocabulary).
        """
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

    def start_outputs(
        self,
        ends: PathEnds,
        call: ModelCall,
        kwargs: ForwardKwargs,
        batch_size: int,
        *,
        over_table: bool = False,
    ) -> np.ndarray:
        """The model output at each sample's path start, as the gradient passes define it.

        Without a layer the starts are model inputs; with one the model gets each sample's real
        inputs and the layer its value at the start, so branches that bypass the layer see x.

        With ``over_table`` the starts are a table of M rows that every sample's paths start
        from (Expected Gradients' background): the output is averaged over the rows,
        ``(N, *output_shape)`` float64. Without a layer and without per-sample
        ``forward_kwargs`` every sample starts from the same rows, so the M rows run once;
        otherwise a sample's start depends on the sample, and all N * M (sample, row) pairs run,
        in blocks of at most :data:`~ig_plugin._engine.spans.SPAN_BYTES` of rows.
        """
        if not over_table:
            if self.layer is None:
                outputs, _ = self.forward(ends.starts, call, kwargs, batch_size)
            else:
                outputs, _ = self.forward(
                    ends.model_inputs, call, kwargs, batch_size, "substitute", ends.starts
                )
            return outputs
        n_samples, n_rows = ends.ends[0].shape[0], ends.starts[0].shape[0]
        if self.layer is None and not kwargs.per_sample:
            outputs, _ = self.forward(ends.starts, call, kwargs, batch_size)

            def mean_of(rows: np.ndarray) -> np.ndarray:
                mean = rows.mean(axis=0, keepdims=True, dtype=np.float64)
                return np.broadcast_to(mean, (n_samples, *mean.shape[1:]))

            return tf.nest.map_structure(mean_of, outputs)
        block = span_length(sum(a[:1].nbytes for a in (*ends.model_inputs, *ends.starts)))
        sums: Any = None  # shaped by the first block's outputs (one array per head)
        for first in range(0, n_samples * n_rows, block):
            pairs = np.arange(first, min(first + block, n_samples * n_rows))
            samples, rows = pairs // n_rows, pairs % n_rows
            starts = tuple(start[rows] for start in ends.starts)
            if self.layer is None:
                per_sample = {key: value[samples] for key, value in kwargs.per_sample.items()}
                outputs, _ = self.forward(
                    starts, call, ForwardKwargs(per_sample, kwargs.shared), batch_size
                )
            else:
                inputs = tuple(x[samples] for x in ends.model_inputs)
                outputs, _ = self.forward(inputs, call, kwargs, batch_size, "substitute", starts)
            if first == 0:
                sums = tf.nest.map_structure(
                    lambda rows: np.zeros((n_samples, *rows.shape[1:])), outputs
                )
            for total, rows in zip(tf.nest.flatten(sums), tf.nest.flatten(outputs), strict=True):
                np.add.at(total, samples, rows)
        return tf.nest.map_structure(lambda total: total / n_rows, sums)

    # -- gradients -----------------------------------------------------------------------------

    def _scalars_at(
        self, span: Span, call: ModelCall, kind: Kinds, many: bool
    ) -> Callable[[list[tf.Tensor], tf.Tensor], tf.Tensor]:
        """The explained outputs at points of ``span``'s samples: ``scalars_at(points,
        sample_ids)``, each point with its sample's inputs, forward_kwargs and targets."""

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
            target_rows = None
            if span.target is not None:
                target_rows = tf.nest.map_structure(lambda t: tf.gather(t, sample_ids), span.target)
            return select_scalar(kind, select(outputs, self.model, call), target_rows, many)

        return scalars_at

    def _gradient_step(
        self,
        span: Span,
        plan: Plan,
        chunk_size: tf.Tensor,
        call: ModelCall,
        kind: Kinds,
        n_targets: int | None,
        progress: tf.Tensor | None,
    ) -> list[tf.Tensor]:
        """The attributions of the samples of ``span``, in one graph loop
        (:func:`ig_plugin._engine.loop.integrate`): one compiled call for all their chunks,
        where a Python-driven loop paid more for dispatching each chunk than a small model
        takes to run it. ``n_targets`` is K with several targets per sample (else None), a
        Python int so that each K has its own trace, with K known in it."""
        scalars_at = self._scalars_at(span, call, kind, n_targets is not None)
        return integrate(span.starts, span.ends, plan, chunk_size, scalars_at, n_targets, progress)

    def _span(
        self,
        starts: Sequence[np.ndarray],
        ends: Sequence[np.ndarray],
        model_inputs: Sequence[np.ndarray],
        kwargs: ForwardKwargs,
        target: Any,
        rows: slice | np.ndarray,
    ) -> Span:
        """The tensors of samples ``rows``: only they are copied to TensorFlow."""
        return Span(
            starts=tuple(map(tf.convert_to_tensor, starts)),
            ends=tuple(tf.convert_to_tensor(a[rows]) for a in ends),
            model_inputs=tuple(tf.convert_to_tensor(a[rows]) for a in model_inputs),
            per_sample={k: tf.convert_to_tensor(v[rows]) for k, v in kwargs.per_sample.items()},
            shared=kwargs.shared,
            target=_rows_of(target, rows, tf.convert_to_tensor),
        )

    def attribution_fn(
        self,
        ends: PathEnds,
        kwargs: ForwardKwargs,
        rule: Rule,
        call: ModelCall,
        plans: SpanPlans,
        chunk_size: int,
        progress: tf.Tensor | None = None,
    ) -> AttributeFn:
        """An ``attribute(first, stop)`` for :func:`ig_plugin._engine.spans.attribute_in_spans`.

        ``ends`` are the path ends of the attributed tensors (see :class:`PathEnds`); ``plans``
        gives each span's plan and says whether ``ends.starts`` are per-sample rows or one table
        of start rows shared by every span. ``chunk_size`` is the most pairs per gradient batch;
        ``progress`` a token from :func:`ig_plugin._engine.progress.reporting`. Each call moves
        only its samples' rows to TensorFlow, so a span bounds that copy too.
        """
        chunk = tf.constant(chunk_size, tf.int64)
        k = rule.n_targets if rule.many else None
        table = None if plans.starts_per_sample else tuple(map(tf.convert_to_tensor, ends.starts))

        def attribute(first: int, stop: int) -> list[np.ndarray]:
            rows = slice(first, stop)
            starts = table or tuple(a[rows] for a in ends.starts)
            span = self._span(starts, ends.ends, ends.model_inputs, kwargs, rule.target, rows)
            plan = tf.nest.map_structure(tf.convert_to_tensor, plans.for_span(first, stop))
            attributions = self._gradients(span, plan, chunk, call, rule.kind, k, progress)
            return [a.numpy() for a in attributions]

        return attribute

    def _raw_step(
        self, span: Span, points: tuple, call: ModelCall, kind: Kinds, n_targets: int | None
    ) -> tuple[list[tf.Tensor], tf.Tensor]:
        sample_ids = tf.range(tf.shape(points[0], out_type=tf.int64)[0])
        many = n_targets is not None
        scalars_at = self._scalars_at(span, call, kind, many)
        return gradients(scalars_at, list(points), sample_ids, many, n_targets)

    def gradients_at(
        self,
        points: Sequence[np.ndarray],
        samples: np.ndarray,
        model_inputs: Sequence[np.ndarray],
        kwargs: ForwardKwargs,
        rule: Rule,
        call: ModelCall,
        batch_size: int,
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Gradients and explained outputs at points the host chose, one point per row.

        For path methods that choose each next point from the last gradient (Guided IG): the
        host runs them step by step, all samples of a batch at once. Point ``i`` belongs to
        sample ``samples[i]`` (an index into X): it gets that sample's real inputs (with a
        layer; ``model_inputs`` are X's arrays), ``forward_kwargs`` rows and targets.

        Returns
        -------
        gradients, scalars
            Per attributed tensor ``(n, [K,] *feature_shape)``, and the explained outputs
            ``(n,)`` (``(n, K)`` with several targets), computed ``batch_size`` points at a time.
        """
        parts: list[tuple[list[np.ndarray], np.ndarray]] = []
        per_point = ForwardKwargs(
            {k: v[samples] for k, v in kwargs.per_sample.items()}, kwargs.shared
        )
        target = _rows_of(rule.target, samples)
        inputs = tuple(x[samples] for x in model_inputs)
        for first in range(0, len(samples), batch_size):
            rows = slice(first, first + batch_size)
            span = self._span((), (), inputs, per_point, target, rows)
            chunk = tuple(tf.convert_to_tensor(p[rows]) for p in points)
            k = rule.n_targets if rule.many else None
            grads, scalars = self._raw(span, chunk, call, rule.kind, k)
            parts.append(([g.numpy() for g in grads], scalars.numpy()))
        if len(parts) == 1:  # most calls: no copy
            return parts[0]
        gradients = [np.concatenate(column) for column in zip(*(p[0] for p in parts), strict=True)]
        return gradients, np.concatenate([p[1] for p in parts])

    # -- explained outputs at chosen points ----------------------------------------------------

    def _score_step(
        self, span: Span, points: tuple, call: ModelCall, kind: Kinds, many: bool
    ) -> tf.Tensor:
        sample_ids = tf.range(tf.shape(points[0], out_type=tf.int64)[0])
        return self._scalars_at(span, call, kind, many)(list(points), sample_ids)

    def scores_at(
        self,
        points: Sequence[np.ndarray],
        samples: np.ndarray,
        model_inputs: Sequence[np.ndarray],
        kwargs: ForwardKwargs,
        rule: Rule,
        call: ModelCall,
        batch_size: int,
    ) -> np.ndarray:
        """The explained outputs at points the host chose, one point per row, without gradients.

        For the evaluation metrics, which score many perturbed copies of each sample (noisy,
        with features deleted or inserted): point ``i`` belongs to sample ``samples[i]`` (an
        index into X) and gets that sample's targets and ``forward_kwargs`` rows (and, with a
        layer, its real inputs: ``model_inputs`` are X's arrays). The explained scalar is taken
        inside the compiled pass, so only ``(n,)`` values come back to the host.

        Returns
        -------
        np.ndarray
            ``(n,)`` (``(n, K)`` with several targets), in the model's output dtype, computed
            ``batch_size`` points at a time.
        """
        per_point = ForwardKwargs(
            {k: v[samples] for k, v in kwargs.per_sample.items()}, kwargs.shared
        )
        target = _rows_of(rule.target, samples)
        inputs = tuple(x[samples] for x in model_inputs)
        parts = []
        for first in range(0, len(samples), batch_size):
            rows = slice(first, first + batch_size)
            span = self._span((), (), inputs, per_point, target, rows)
            chunk = tuple(tf.convert_to_tensor(p[rows]) for p in points)
            parts.append(self._scores(span, chunk, call, rule.kind, rule.many).numpy())
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
