"""The TensorFlow side: compiled forward passes and gradient steps for one model.

This is the one module that runs the model. Its passes are ``tf.function``s made once per
explainer and model (``reduce_retracing`` lets one trace serve every chunk size and every N), and
all take their data chunk by chunk so memory is bounded by ``internal_batch_size``.

The gradient step is one function built two ways: without a layer the path points are the model
inputs; with a layer the model gets the real inputs and the layer's outputs (or inputs) are
replaced by the path points, so branches that bypass the layer see the real inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ig_plugin._inputs import ForwardKwargs, Inputs
from ig_plugin._layer_hooks import recording, substituting
from ig_plugin._outputs import OutputPick, select_output
from ig_plugin._targets import TargetKind, select_scalar

#: ``grad_fn`` handed to :func:`ig_plugin._integrate.integrate`.
GradFn = Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]


def _as_column(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Reshape per-row scalars ``(n,)`` to broadcast against ``like`` ``(n, *feature_shape)``."""
    return tf.reshape(tf.cast(values, like.dtype), [-1] + [1] * (like.shape.rank - 1))


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
        self._forward = tf.function(self._forward_step, reduce_retracing=True)
        self._gradients = tf.function(self._gradient_step, reduce_retracing=True)

    def _call(self, inputs: Sequence[tf.Tensor], as_list: bool, kwargs: dict[str, Any]) -> Any:
        return self.model(list(inputs) if as_list else inputs[0], **kwargs)

    # -- forward passes ------------------------------------------------------------------------

    def _forward_step(
        self,
        inputs: tuple,
        as_list: bool,
        kwargs: dict[str, Any],
        mode: str,
        to_inputs: bool,
        layer_values: tuple,
    ) -> Any:
        if mode == "plain":
            return self._call(inputs, as_list, kwargs), []
        if mode == "substitute":
            structure = self._structures[to_inputs]
            with substituting(self.layer, to_inputs, structure, layer_values):
                return self._call(inputs, as_list, kwargs), []
        with recording(self.layer, to_inputs) as calls:
            outputs = self._call(inputs, as_list, kwargs)
        if len(calls) != 1:
            raise ValueError(
                f"`layer` ({self.layer.name}) must be called exactly once per forward pass of the "
                f"model to be attributed to. It was called {len(calls)} times."
            )
        # Only the nesting is kept: the recorded tensors belong to this trace's graph.
        self._structures[to_inputs] = tf.nest.map_structure(lambda _: 0, calls[0])
        return outputs, tf.nest.flatten(calls[0])

    def forward(
        self,
        arrays: Sequence[np.ndarray],
        as_list: bool,
        kwargs: ForwardKwargs,
        batch_size: int,
        mode: str = "plain",
        to_inputs: bool = False,
        layer_values: Sequence[np.ndarray] = (),
        pick: OutputPick = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Run the model on ``arrays`` in batches of ``batch_size`` samples.

        ``mode`` is ``"plain"``; ``"record"``, which also returns the layer's outputs (or inputs,
        with ``to_inputs``) as flat arrays; or ``"substitute"``, which replaces them with
        ``layer_values``.

        Returns
        -------
        outputs, layer_values
            The model's output (the one ``pick`` names, for a model with several), and the
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
                as_list,
                batch_kwargs,
                mode,
                to_inputs,
                tuple(v[rows] for v in layer_values),
            )
            outputs.append(select_output(output, self.model, pick).numpy())
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
        to_inputs: bool,
        pick: OutputPick,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """The model outputs on X, and where the paths start and end.

        Without a layer the paths run between the baselines and the inputs; with one, between
        the layer's outputs (inputs, with ``to_inputs``) on the baselines and on X.

        Raises
        ------
        TypeError
            The layer's recorded values are not floats (e.g. the token ids an Embedding takes).
        """
        arrays, as_list = inputs.arrays, inputs.as_list
        if self.layer is None:
            predictions, _ = self.forward(arrays, as_list, kwargs, batch_size, pick=pick)
            return predictions, baselines, arrays
        predictions, ends = self.forward(
            arrays, as_list, kwargs, batch_size, "record", to_inputs, pick=pick
        )
        _, starts = self.forward(
            baselines, as_list, kwargs, batch_size, "record", to_inputs, pick=pick
        )
        side = "inputs" if to_inputs else "outputs"
        for value in ends:
            if value.dtype.kind != "f":
                raise TypeError(
                    f"The {side} of `layer` ({self.layer.name}) have dtype {value.dtype}, which "
                    "cannot be interpolated; attribute to a layer whose "
                    f"{side} are floats (attribute_to_layer_inputs={not to_inputs} may do)."
                )
        return predictions, tuple(starts), tuple(ends)

    # -- gradients -----------------------------------------------------------------------------

    def _gradient_step(
        self,
        starts: tuple,
        ends: tuple,
        model_inputs: tuple,
        sample_ids: tf.Tensor,
        alphas: tf.Tensor,
        weights: tf.Tensor,
        per_sample: dict[str, tf.Tensor],
        shared: dict[str, Any],
        target: tf.Tensor | None,
        kind: TargetKind,
        as_list: bool,
        to_inputs: bool,
        pick: OutputPick,
    ) -> list:
        # starts, ends: per attributed tensor (N, *feature_shape), resident; the chunk's path
        # points are built here, next to the model: points: (n_pairs, *feature_shape).
        points = []
        for start, end in zip(starts, ends, strict=True):
            start_rows, end_rows = tf.gather(start, sample_ids), tf.gather(end, sample_ids)
            points.append(start_rows + _as_column(alphas, start_rows) * (end_rows - start_rows))
        kwargs = {**{k: tf.gather(v, sample_ids) for k, v in per_sample.items()}, **shared}
        target_rows = None if target is None else tf.gather(target, sample_ids)
        with tf.GradientTape() as tape:
            tape.watch(points)
            if self.layer is None:
                outputs = self._call(points, as_list, kwargs)
            else:
                rows = [tf.gather(x, sample_ids) for x in model_inputs]
                structure = self._structures[to_inputs]
                with substituting(self.layer, to_inputs, structure, points):
                    outputs = self._call(rows, as_list, kwargs)
            scalars = select_scalar(kind, select_output(outputs, self.model, pick), target_rows)
        # A tensor that does not reach the output has a zero gradient, not None.
        grads = tape.gradient(scalars, points, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        segments = sample_ids - sample_ids[0]
        n_segments = segments[-1] + 1
        return [
            tf.math.unsorted_segment_sum(_as_column(weights, g) * g, segments, n_segments)
            for g in grads
        ]

    def gradients(
        self,
        starts: Sequence[np.ndarray],
        ends: Sequence[np.ndarray],
        model_inputs: Sequence[np.ndarray],
        kwargs: ForwardKwargs,
        target: np.ndarray | None,
        kind: TargetKind,
        as_list: bool,
        to_inputs: bool = False,
        pick: OutputPick = None,
    ) -> GradFn:
        """A ``grad_fn`` for :func:`ig_plugin._integrate.integrate`.

        ``starts`` and ``ends`` are the path ends of the attributed tensors: the model inputs, or
        with a layer its recorded outputs (inputs with ``to_inputs``) at the baselines and at X,
        in which case ``model_inputs`` are the real model inputs. All are moved to TensorFlow
        once here, not once per chunk.
        """
        resident = [
            tuple(tf.convert_to_tensor(a) for a in arrays)
            for arrays in (starts, ends, model_inputs if self.layer is not None else ())
        ]
        per_sample = {k: tf.convert_to_tensor(v) for k, v in kwargs.per_sample.items()}
        target_tensor = None if target is None else tf.convert_to_tensor(target)

        def grad_fn(
            sample_ids: np.ndarray, alphas: np.ndarray, weights: np.ndarray
        ) -> list[np.ndarray]:
            sums = self._gradients(
                *resident,
                tf.convert_to_tensor(sample_ids, dtype=tf.int64),
                tf.convert_to_tensor(alphas),
                tf.convert_to_tensor(weights),
                per_sample,
                kwargs.shared,
                target_tensor,
                kind,
                as_list,
                to_inputs,
                pick,
            )
            return [s.numpy() for s in sums]

        return grad_fn
