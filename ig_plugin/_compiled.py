"""The TensorFlow side: compiled forward passes and gradient steps for one model.

This is the one module that runs the model. Both passes are ``tf.function``s made once per
explainer and model (``reduce_retracing`` lets one trace serve every chunk size and every N), and
both take their data chunk by chunk so memory is bounded by ``internal_batch_size``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ig_plugin._inputs import ForwardKwargs
from ig_plugin._targets import TargetKind, select_scalar


def _as_column(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Reshape per-row scalars ``(n,)`` to broadcast against ``like`` ``(n, *feature_shape)``."""
    return tf.reshape(tf.cast(values, like.dtype), [-1] + [1] * (like.shape.rank - 1))


class CompiledModel:
    """Compiled passes of a model called as ``model(inputs, **kwargs)``.

    Parameters
    ----------
    model
        A Keras model (or any callable on tensors that TensorFlow can differentiate).
    """

    def __init__(self, model: Callable[..., Any]) -> None:
        self.model = model
        self._forward = tf.function(self._forward_step, reduce_retracing=True)
        self._input_gradients = tf.function(self._input_gradient_step, reduce_retracing=True)

    def _call(self, inputs: Sequence[tf.Tensor], as_list: bool, kwargs: dict[str, Any]) -> Any:
        return self.model(list(inputs) if as_list else inputs[0], **kwargs)

    def _forward_step(self, inputs: tuple, as_list: bool, kwargs: dict[str, Any]) -> Any:
        return self._call(inputs, as_list, kwargs)

    def predict(
        self,
        arrays: Sequence[np.ndarray],
        as_list: bool,
        kwargs: ForwardKwargs,
        batch_size: int,
    ) -> np.ndarray:
        """The model's outputs on ``arrays``, computed in batches of ``batch_size`` samples.

        Raises
        ------
        ValueError
            The model returns several output tensors (a list or dict), which is not supported.
        """
        n_samples = arrays[0].shape[0]
        outputs = []
        for first in range(0, n_samples, batch_size):
            rows = slice(first, first + batch_size)
            batch_kwargs = {k: v[rows] for k, v in kwargs.per_sample.items()}
            output = self._forward(
                tuple(a[rows] for a in arrays), as_list, {**batch_kwargs, **kwargs.shared}
            )
            if not tf.is_tensor(output):
                raise ValueError(
                    "The model returned several outputs "
                    f"({type(output).__name__} of {len(output)}); explain a model with a single "
                    "output tensor, e.g. keras.Model(model.inputs, model.outputs[i])."
                )
            outputs.append(output.numpy())
        return np.concatenate(outputs)

    def _input_gradient_step(
        self,
        starts: tuple,
        ends: tuple,
        sample_ids: tf.Tensor,
        alphas: tf.Tensor,
        weights: tf.Tensor,
        per_sample: dict[str, tf.Tensor],
        shared: dict[str, Any],
        target: tf.Tensor | None,
        kind: TargetKind,
        as_list: bool,
    ) -> list:
        # starts, ends: per input (N, *feature_shape), resident; the chunk's path points are
        # built here, next to the model: points: (n_pairs, *feature_shape).
        points = []
        for start, end in zip(starts, ends, strict=True):
            start_rows, end_rows = tf.gather(start, sample_ids), tf.gather(end, sample_ids)
            points.append(start_rows + _as_column(alphas, start_rows) * (end_rows - start_rows))
        kwargs = {k: tf.gather(v, sample_ids) for k, v in per_sample.items()}
        target_rows = None if target is None else tf.gather(target, sample_ids)
        with tf.GradientTape() as tape:
            tape.watch(points)
            outputs = self._call(points, as_list, {**kwargs, **shared})
            scalars = select_scalar(kind, outputs, target_rows)
        # An input that does not reach the output has a zero gradient, not None.
        grads = tape.gradient(scalars, points, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        segments = sample_ids - sample_ids[0]
        n_segments = segments[-1] + 1
        return [
            tf.math.unsorted_segment_sum(_as_column(weights, g) * g, segments, n_segments)
            for g in grads
        ]

    def input_gradients(
        self,
        starts: Sequence[tf.Tensor],
        ends: Sequence[tf.Tensor],
        kwargs: ForwardKwargs,
        target: np.ndarray | None,
        kind: TargetKind,
        as_list: bool,
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]:
        """A ``grad_fn`` for :func:`ig_plugin._integrate.integrate` over the model inputs.

        ``starts`` and ``ends`` are moved to TensorFlow once here, not once per chunk.
        """
        start_tensors = tuple(tf.convert_to_tensor(s) for s in starts)
        end_tensors = tuple(tf.convert_to_tensor(e) for e in ends)
        per_sample = {k: tf.convert_to_tensor(v) for k, v in kwargs.per_sample.items()}
        target_tensor = None if target is None else tf.convert_to_tensor(target)

        def grad_fn(
            sample_ids: np.ndarray, alphas: np.ndarray, weights: np.ndarray
        ) -> list[np.ndarray]:
            sums = self._input_gradients(
                start_tensors,
                end_tensors,
                tf.convert_to_tensor(sample_ids, dtype=tf.int64),
                tf.convert_to_tensor(alphas),
                tf.convert_to_tensor(weights),
                per_sample,
                kwargs.shared,
                target_tensor,
                kind,
                as_list,
            )
            return [s.numpy() for s in sums]

        return grad_fn
