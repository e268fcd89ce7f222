"""The compiled loop where every path integral is summed, chunk by chunk.

Pure TensorFlow, run inside a ``tf.function``, and blind to the model and to the path method: a
plan (:mod:`ig_plugin._engine.plans`) builds each chunk's points, ``scalars_at`` gives the
explained outputs there, and the loop differentiates them and folds ``weight * factor *
gradient`` into per-sample sums. The (sample, point) pairs of a span are taken ``chunk_size`` at
a time, sorted by sample, so a sample's sum is carried (in float64) while its pairs go on into
the next chunk and is finished (by the plan) as soon as they end. Memory is the chunk plus the
finished attributions, whatever the number of samples or of points per path.

With several targets per sample (``scalars_at`` returning ``(n_pairs, K)``), one forward pass
serves up to :data:`TARGETS_PER_PASS` of the K targets (see :func:`gradients`), and every sum
gains a K axis after the sample.

A plan with ``idgi`` (:class:`ig_plugin._engine.plans.Idgi`) has the loop sum IDGI's terms
instead, from the gradients and the outputs that the same forward pass gives; the last point of
a chunk whose sample goes on waits for the next chunk's first output, so one more carry holds
its squared-gradient shares and its output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import tensorflow as tf

from ig_plugin._engine.path_math import idgi_terms, settle, weighted_sums
from ig_plugin._engine.plans import Idgi, Plan
from ig_plugin._engine.progress import report

#: ``scalars_at(points, sample_ids)``: the explained output at each point, ``(n_pairs,)`` or, for
#: several targets, ``(n_pairs, K)``; ``points`` holds one tensor per attributed tensor and
#: ``sample_ids`` the span row each pair belongs to.
ScalarsAt = Callable[[list[tf.Tensor], tf.Tensor], tf.Tensor]


#: Most targets differentiated from one forward pass. Each target's gradient is one backward
#: pass of a persistent tape, written out in the graph: ten of them make a graph ten times the
#: size of one gradient's, and take most of what sharing a forward pass can save (a forward pass
#: costs about a quarter of a forward and backward one).
TARGETS_PER_PASS = 10


def _backward(
    tape: tf.GradientTape,
    scalars: tf.Tensor,
    points: list,
    first: Any,
    count: int,
    n_targets: int,
) -> list[tf.Tensor]:
    """The gradients of targets ``first`` to ``first + count - 1`` of ``(n_pairs, K)``
    scalars, one backward pass each with a one-hot cotangent (its vector-Jacobian product is
    that target's gradient): per tensor ``(n_pairs, count, *feature_shape)``. A target past
    the last one has a zero cotangent and a zero gradient (the caller drops it)."""
    rows = tf.shape(scalars)[0]
    # Written out side by side, not chained: chaining them (one backward pass after the other)
    # made ten targets on a small CNN 0.8x of ten separate gradients instead of 0.6x.
    per_target = [
        tape.gradient(
            scalars,
            points,
            output_gradients=tf.one_hot(tf.fill([rows], first + k), n_targets, dtype=scalars.dtype),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        for k in range(count)
    ]
    return [tf.stack(column, axis=1) for column in zip(*per_target, strict=True)]


def _remaining_targets(
    scalars_at: ScalarsAt,
    points: list,
    sample_ids: tf.Tensor,
    first_pass: list[tf.Tensor],
    n_targets: int,
    per_pass: int,
) -> list[tf.Tensor]:
    """The gradients of all K targets when the first ``per_pass`` are ``first_pass``: the
    others ``per_pass`` at a time, a forward pass each, in a graph loop (so the graph holds
    ``per_pass`` backward passes whatever K)."""
    n_passes = -(-n_targets // per_pass)

    def body(index: tf.Tensor, parts: tuple) -> tuple:
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(points)
            scalars = scalars_at(points, sample_ids)
        grads = _backward(tape, scalars, points, index * per_pass, per_pass, n_targets)
        return index + 1, tuple(part.write(index, g) for part, g in zip(parts, grads, strict=True))

    parts = tuple(
        tf.TensorArray(g.dtype, size=n_passes, element_shape=g.shape).write(0, g)
        for g in first_pass
    )
    # One pass at a time: parallel iterations would hold several passes' tensors in memory.
    _, parts = tf.while_loop(
        lambda index, _: index < n_passes, body, (tf.constant(1), parts), parallel_iterations=1
    )
    # (passes, n_pairs, per_pass, *features) -> (n_pairs, K, *features)
    joined = []
    for part, g in zip(parts, first_pass, strict=True):
        stacked = part.stack()
        order = [1, 0, *range(2, len(g.shape) + 1)]
        merged = tf.reshape(
            tf.transpose(stacked, order),
            tf.concat([tf.shape(g)[:1], [n_passes * per_pass], tf.shape(g)[2:]], axis=0),
        )
        joined.append(merged[:, :n_targets])
    return joined


def gradients(
    scalars_at: ScalarsAt,
    points: list,
    sample_ids: tf.Tensor,
    many: bool,
    n_targets: int | None = None,
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """d scalars / d points: per tensor ``(n_pairs, *feature_shape)``, or with ``many``
    ``(n_pairs, K, *feature_shape)``; and the scalars themselves.

    K targets share forward passes: up to :data:`TARGETS_PER_PASS` gradients are taken from one
    forward pass, one backward pass each. ``tape.batch_jacobian``, which vectorises the K
    backward passes (pfor), was 1.6x slower than K separate gradients on a small CNN, and a graph
    loop over the K backward passes of one tape 1.5x; written out in the graph they took about
    0.6x. More targets are taken that many at a time, each batch with its own forward pass, in
    a graph loop. K is ``n_targets``, a Python int (so a compiled caller traces once per K: a
    trace that serves several K would leave it open), else the scalars' static shape; when
    neither says it, the batch Jacobian is the fallback.
    """
    zero = tf.UnconnectedGradients.ZERO
    # Only the points are differentiated: the model's variables need not be watched.
    with tf.GradientTape(persistent=many, watch_accessed_variables=False) as tape:
        tape.watch(points)
        scalars = scalars_at(points, sample_ids)
    if not many:
        # A tensor that does not reach the output has a zero gradient, not None.
        return tape.gradient(scalars, points, unconnected_gradients=zero), scalars
    n_targets = n_targets or scalars.shape[1]
    if n_targets is None:
        jacobians = [tape.batch_jacobian(scalars, p, unconnected_gradients=zero) for p in points]
        return jacobians, scalars
    n_passes = -(-n_targets // TARGETS_PER_PASS)
    per_pass = -(-n_targets // n_passes)  # as even as can be: 12 targets are 6 + 6, not 10 + 2
    first_pass = _backward(tape, scalars, points, 0, per_pass, n_targets)
    if n_passes == 1:
        return first_pass, scalars
    rest = _remaining_targets(scalars_at, points, sample_ids, first_pass, n_targets, per_pass)
    return rest, scalars


def integrate(
    starts: Sequence[tf.Tensor],
    ends: Sequence[tf.Tensor],
    plan: Plan,
    chunk_size: tf.Tensor,
    scalars_at: ScalarsAt,
    n_targets: int | None = None,
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
        K, when ``scalars_at`` gives K targets per pair (a Python int, static in the trace):
        attributions gain a K axis after the sample.
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
        grads, scalars = gradients(scalars_at, part.points, part.sample_ids, many, n_targets)
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
        if n_targets is None:
            return features
        return tf.concat([tf.constant([n_targets], tf.int64), features], axis=0)

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
