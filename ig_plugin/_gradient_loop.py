"""The compiled loop where every path integral is summed, chunk by chunk.

Pure TensorFlow, run inside a ``tf.function``, and blind to the model: it builds each chunk's
points, asks ``scalars_at`` for the explained outputs there, differentiates them, and folds
``weight * gradient`` into per-sample sums. The (sample, point) pairs of a span are taken
``chunk_size`` at a time, sorted by sample, so a sample's sum is carried (in float64) while its
pairs go on into the next chunk and is finished as soon as they end. Memory is the chunk plus
the finished attributions, whatever the number of samples or of points per path.

Two plans say where the points lie:

- :class:`SharedSteps` (Integrated Gradients): every sample walks the same nodes from its start
  to its end; ``(end - start)`` is applied once, when the sample is finished.
- :class:`DrawnPairs` (Expected Gradients): each pair has its own start (a row of a table, e.g. a
  background sample), node and weight; ``(end - start)`` is applied pair by pair.

With several targets per sample (``scalars_at`` returning ``(n_pairs, K)``), one forward pass
serves all K: the gradients are a batch Jacobian, and every sum gains a K axis after the sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf

from ig_plugin._path_math import along_paths, chunk_points, scale, settle, weighted_sums
from ig_plugin._progress import report


class SharedSteps(NamedTuple):
    """Every sample's path has the nodes ``alphas``: pair ``p`` is step ``p % S`` of sample
    ``p // S``."""

    alphas: tf.Tensor  # (S,)
    weights: tf.Tensor  # (S,)


class DrawnPairs(NamedTuple):
    """Pairs with their own start rows, nodes and weights, sorted by sample.

    Every sample of the span must have at least one pair; ``samples`` counts from 0 in the span.
    """

    samples: tf.Tensor  # (P,) int64, non-decreasing
    starts: tf.Tensor  # (P,) int64, rows of the start table
    alphas: tf.Tensor  # (P,)
    weights: tf.Tensor  # (P,)


Plan = SharedSteps | DrawnPairs

#: ``scalars_at(points, sample_ids)``: the explained output at each point, ``(n_pairs,)`` or, for
#: several targets, ``(n_pairs, K)``; ``points`` holds one tensor per attributed tensor and
#: ``sample_ids`` the span row each pair belongs to.
ScalarsAt = Callable[[list[tf.Tensor], tf.Tensor], tf.Tensor]


class _Chunk(NamedTuple):
    sample_ids: tf.Tensor  # (n_pairs,) span rows
    first: tf.Tensor  # the chunk's first sample
    n_segments: tf.Tensor  # samples the chunk touches
    last_is_complete: tf.Tensor  # whether the chunk's last sample ends in it
    points: list  # per attributed tensor (n_pairs, *feature_shape)
    pair_weights: tf.Tensor  # (n_pairs,)
    factors: list | None  # per attributed tensor (n_pairs, *feature_shape): end - start


def _shared_chunk(
    starts: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], plan: SharedSteps, lo, hi
) -> _Chunk:
    n_steps = tf.size(plan.alphas, out_type=tf.int64)
    pairs = tf.range(lo, hi)
    sample_ids, step_ids = pairs // n_steps, pairs % n_steps
    first = lo // n_steps
    n_segments = (hi - 1) // n_steps - first + 1
    offset, samples = lo - first * n_steps, slice(first, first + n_segments)
    points = [
        chunk_points(
            start[samples], end[samples], plan.alphas, offset, sample_ids - first, step_ids
        )
        for start, end in zip(starts, ends, strict=True)
    ]
    weights = tf.gather(plan.weights, step_ids)
    return _Chunk(sample_ids, first, n_segments, hi % n_steps == 0, points, weights, None)


def _drawn_chunk(
    table: Sequence[tf.Tensor], ends: Sequence[tf.Tensor], plan: DrawnPairs, lo, hi
) -> _Chunk:
    stop = tf.size(plan.samples, out_type=tf.int64)
    sample_ids, start_ids = plan.samples[lo:hi], plan.starts[lo:hi]
    first = sample_ids[0]
    following = plan.samples[tf.minimum(hi, stop - 1)]
    last_is_complete = tf.logical_or(tf.equal(hi, stop), tf.not_equal(following, sample_ids[-1]))
    points, factors = [], []
    for start, end in zip(table, ends, strict=True):
        lows, highs = tf.gather(start, start_ids), tf.gather(end, sample_ids)
        point, factor = along_paths(lows, highs, plan.alphas[lo:hi])
        points.append(point)
        factors.append(factor)
    n_segments = sample_ids[-1] - first + 1
    return _Chunk(
        sample_ids, first, n_segments, last_is_complete, points, plan.weights[lo:hi], factors
    )


def _gradients(
    scalars_at: ScalarsAt, points: list, sample_ids: tf.Tensor, many: bool
) -> list[tf.Tensor]:
    """d scalars / d points: per tensor ``(n_pairs, *feature_shape)``, or with ``many``
    ``(n_pairs, K, *feature_shape)`` from one forward pass."""
    # Only the points are differentiated: the model's variables need not be watched.
    with tf.GradientTape(persistent=many, watch_accessed_variables=False) as tape:
        tape.watch(points)
        scalars = scalars_at(points, sample_ids)
    # A tensor that does not reach the output has a zero gradient, not None.
    zero = tf.UnconnectedGradients.ZERO
    if not many:
        return tape.gradient(scalars, points, unconnected_gradients=zero)
    return [tape.batch_jacobian(scalars, p, unconnected_gradients=zero) for p in points]


def integrate(
    starts: Sequence[tf.Tensor],
    ends: Sequence[tf.Tensor],
    plan: Plan,
    chunk_size: tf.Tensor,
    scalars_at: ScalarsAt,
    n_targets: tf.Tensor | None = None,
    progress: tf.Tensor | None = None,
) -> list[tf.Tensor]:
    """Attributions of the samples of ``ends``: per attributed tensor ``(n, [K,] *feature)``.

    Parameters
    ----------
    starts
        Per attributed tensor: each sample's start ``(n, *feature_shape)`` for
        :class:`SharedSteps`; the table of start rows for :class:`DrawnPairs`.
    ends
        Per attributed tensor ``(n, *feature_shape)``: where each sample's paths end.
    plan
        Where the points lie and how they are weighted.
    chunk_size
        Most pairs per gradient batch (int64 scalar).
    scalars_at
        The explained outputs at a chunk's points (:data:`ScalarsAt`).
    n_targets
        K, when ``scalars_at`` gives K targets per pair (int64 scalar): attributions gain a K
        axis after the sample.
    progress
        A token of :func:`ig_plugin._progress.reporting`: each chunk reports its pairs.
    """
    shared, many = isinstance(plan, SharedSteps), n_targets is not None
    if isinstance(plan, SharedSteps):
        n_steps = tf.size(plan.alphas, out_type=tf.int64)
        stop = tf.shape(ends[0], out_type=tf.int64)[0] * n_steps
    else:
        stop = tf.size(plan.samples, out_type=tf.int64)
    n_chunks = (stop + chunk_size - 1) // chunk_size

    def body(chunk: tf.Tensor, carries: tuple, finished: tuple) -> tuple:
        lo = chunk * chunk_size
        hi = tf.minimum(lo + chunk_size, stop)
        if isinstance(plan, SharedSteps):
            part = _shared_chunk(starts, ends, plan, lo, hi)
        else:
            part = _drawn_chunk(starts, ends, plan, lo, hi)
        grads = _gradients(scalars_at, part.points, part.sample_ids, many)
        if part.factors is not None:
            # Per pair: gradient * (end - start), with a K axis to skip when there are targets.
            grads = [
                g * (f[:, tf.newaxis] if many else f)
                for g, f in zip(grads, part.factors, strict=True)
            ]
        segments = part.sample_ids - part.first
        new_carries, new_finished = [], []
        for grad, carry, start, end, rows in zip(
            grads, carries, starts, ends, finished, strict=True
        ):
            sums = weighted_sums(grad, segments, part.n_segments, part.pair_weights)
            done, carry = settle(tf.cast(sums, tf.float64), carry, part.last_is_complete)
            samples = slice(part.first, part.first + tf.shape(done, out_type=tf.int64)[0])
            if shared:
                done = scale(done, start[samples], end[samples], many)
            new_finished.append(rows.write(tf.cast(chunk, tf.int32), tf.cast(done, end.dtype)))
            new_carries.append(carry)
        reports = [] if progress is None else [report(progress, hi - lo)]
        with tf.control_dependencies(reports):
            return chunk + 1, tuple(new_carries), tuple(new_finished)

    def sum_shape(end: tf.Tensor) -> tf.Tensor:
        """A sample's sum: the features, after a K axis with several targets."""
        features = tf.shape(end, out_type=tf.int64)[1:]
        return features if n_targets is None else tf.concat([[n_targets], features], axis=0)

    carries = tuple(tf.zeros(sum_shape(end), tf.float64) for end in ends)
    finished = tuple(
        tf.TensorArray(
            end.dtype,
            size=tf.cast(n_chunks, tf.int32),
            infer_shape=False,
            element_shape=tf.TensorShape([None] * (1 + many)).concatenate(end.shape[1:]),
        )
        for end in ends
    )
    # One chunk at a time: parallel iterations would hold several chunks in memory.
    _, _, finished = tf.while_loop(
        lambda chunk, *_: chunk < n_chunks,
        body,
        (tf.constant(0, tf.int64), carries, finished),
        parallel_iterations=1,
    )
    # The last chunk ends with the last sample's pairs, so no sum is left open.
    return [rows.concat() for rows in finished]
