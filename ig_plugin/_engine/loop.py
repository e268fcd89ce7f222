"""The compiled loop where every path integral is summed, chunk by chunk.

Pure TensorFlow, run inside a ``tf.function``, and blind to the model and to the path method: a
plan (:mod:`ig_plugin._engine.plans`) builds each chunk's points, ``scalars_at`` gives the
explained outputs there, and the loop differentiates them and folds ``weight * factor *
gradient`` into per-sample sums. The (sample, point) pairs of a span are taken ``chunk_size`` at
a time, sorted by sample, so a sample's sum is carried (in float64) while its pairs go on into
the next chunk and is finished (by the plan) as soon as they end. Memory is the chunk plus the
finished attributions, whatever the number of samples or of points per path.

With several targets per sample (``scalars_at`` returning ``(n_pairs, K)``), one forward pass
serves all K: the gradients are a batch Jacobian, and every sum gains a K axis after the sample.

A plan with ``idgi`` (:class:`ig_plugin._engine.plans.Idgi`) has the loop sum IDGI's terms
instead, from the gradients and the outputs that the same forward pass gives; the last point of
a chunk whose sample goes on waits for the next chunk's first output, so one more carry holds
its squared-gradient shares and its output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import tensorflow as tf

from ig_plugin._engine.path_math import idgi_terms, settle, weighted_sums
from ig_plugin._engine.plans import Idgi, Plan
from ig_plugin._engine.progress import report

#: ``scalars_at(points, sample_ids)``: the explained output at each point, ``(n_pairs,)`` or, for
#: several targets, ``(n_pairs, K)``; ``points`` holds one tensor per attributed tensor and
#: ``sample_ids`` the span row each pair belongs to.
ScalarsAt = Callable[[list[tf.Tensor], tf.Tensor], tf.Tensor]


def gradients(
    scalars_at: ScalarsAt, points: list, sample_ids: tf.Tensor, many: bool
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """d scalars / d points: per tensor ``(n_pairs, *feature_shape)``, or with ``many``
    ``(n_pairs, K, *feature_shape)`` from one forward pass; and the scalars themselves."""
    # Only the points are differentiated: the model's variables need not be watched.
    with tf.GradientTape(persistent=many, watch_accessed_variables=False) as tape:
        tape.watch(points)
        scalars = scalars_at(points, sample_ids)
    # A tensor that does not reach the output has a zero gradient, not None.
    zero = tf.UnconnectedGradients.ZERO
    if not many:
        return tape.gradient(scalars, points, unconnected_gradients=zero), scalars
    jacobians = [tape.batch_jacobian(scalars, p, unconnected_gradients=zero) for p in points]
    return jacobians, scalars


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
        Per attributed tensor: each sample's start ``(n, *feature_shape)``, or a table of start
        rows for a plan that draws its starts (see :class:`~ig_plugin._engine.plans.SpanPlans`).
    ends
        Per attributed tensor ``(n, *feature_shape)``: where each sample's paths end.
    plan
        Where the points lie and how their gradients add up (a
        :class:`~ig_plugin._engine.plans.Plan`).
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
    many = n_targets is not None
    stop = plan.n_pairs(ends)
    n_chunks = (stop + chunk_size - 1) // chunk_size

    def body(chunk: tf.Tensor, carries: tuple, finished: tuple, pending: tuple) -> tuple:
        lo = chunk * chunk_size
        hi = tf.minimum(lo + chunk_size, stop)
        part = plan.chunk(starts, ends, lo, hi)
        grads, scalars = gradients(scalars_at, part.points, part.sample_ids, many)
        weights = part.weights
        if plan.idgi:
            idgi = idgi_terms(
                grads,
                scalars,
                part.sample_ids,
                part.last_is_complete,
                pending=list(pending[1:]),
                pending_output=pending[0],
                sign=cast(Idgi, plan).sign,
                many=many,
            )
            grads, weights = idgi.terms, tf.ones_like(part.weights)
            carries = tuple(c + o for c, o in zip(carries, idgi.opening, strict=True))
            pending = (idgi.pending_output, *idgi.pending)
        elif part.factors is not None:
            # Per pair: gradient * factor, with a K axis to skip when there are targets.
            grads = [
                g * (f[:, tf.newaxis] if many else f)
                for g, f in zip(grads, part.factors, strict=True)
            ]
        first = part.sample_ids[0]
        n_segments = part.sample_ids[-1] - first + 1
        segments = part.sample_ids - first
        new_carries, new_finished = [], []
        for grad, carry, start, end, rows in zip(
            grads, carries, starts, ends, finished, strict=True
        ):
            sums = weighted_sums(grad, segments, n_segments, weights)
            done, carry = settle(tf.cast(sums, tf.float64), carry, part.last_is_complete)
            samples = slice(first, first + tf.shape(done, out_type=tf.int64)[0])
            done = plan.finish(done, start, end, samples, many)
            new_finished.append(rows.write(tf.cast(chunk, tf.int32), tf.cast(done, end.dtype)))
            new_carries.append(carry)
        reports = [] if progress is None else [report(progress, hi - lo)]
        with tf.control_dependencies(reports):
            return chunk + 1, tuple(new_carries), tuple(new_finished), pending

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
    # IDGI: the output at the last point of the previous chunk, and its squared-gradient shares.
    output_shape = [] if n_targets is None else tf.reshape(n_targets, [1])
    pending = (tf.zeros(output_shape, tf.float64), *carries) if plan.idgi else ()
    # One chunk at a time: parallel iterations would hold several chunks in memory.
    _, _, finished, _ = tf.while_loop(
        lambda chunk, *_: chunk < n_chunks,
        body,
        (tf.constant(0, tf.int64), carries, finished, pending),
        parallel_iterations=1,
    )
    # The last chunk ends with the last sample's pairs, so no sum is left open.
    return [rows.concat() for rows in finished]
