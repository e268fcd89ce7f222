"""The arithmetic of the path integral in TensorFlow, without a model.

Pure functions on tensors, used inside the compiled gradient loop of
:mod:`ig_plugin._engine.compiled`: building a chunk's path points, summing weighted gradients per
sample, carrying a sample's sum across chunks, scaling finished sums by ``x - x'``, and IDGI's
terms (:func:`idgi_terms`), which weigh each gradient by the output change along its interval.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

#: Most segments per chunk that :func:`weighted_sums` sums with a matrix product; beyond, the
#: product's ``n_segments * n_pairs`` work outgrows a segment sum's two passes (on 2 cores, a
#: chunk of 512 rows of 3,200 features: 1.0 ms against 1.4 ms at 10 segments, 10.4 ms against
#: 2.9 ms at 512; 4,096 rows in 4,096 segments, one per row as ``n_steps="auto"`` has: 515 ms
#: against 14 ms).
MATMUL_SEGMENTS = 16


def weighted_sums(
    grads: tf.Tensor, segments: tf.Tensor, n_segments: tf.Tensor, weights: tf.Tensor
) -> tf.Tensor:
    """``sum weight * grad`` over each segment's rows: ``(n_segments, *feature_shape)``.

    With few segments (a fixed rule's chunk spans a few samples), one matrix product,
    ``(n_segments, n_pairs) @ (n_pairs, n_features)``, whose left factor holds each pair's
    weight in its segment's row: it scales and sums in one multithreaded kernel. With more than
    :data:`MATMUL_SEGMENTS` (a row per node, as the adaptive rule lays out its nodes), the
    weighted rows summed by segment: linear in the rows, where the product is quadratic.
    """
    flat = tf.reshape(grads, [tf.shape(grads)[0], -1])
    weights = tf.cast(weights, grads.dtype)

    def by_product() -> tf.Tensor:
        mixing = tf.one_hot(
            tf.cast(segments, tf.int32), tf.cast(n_segments, tf.int32), axis=0, dtype=grads.dtype
        )
        return tf.matmul(mixing * weights, flat)

    def by_segment() -> tf.Tensor:
        return tf.math.unsorted_segment_sum(flat * weights[:, tf.newaxis], segments, n_segments)

    sums = tf.cond(n_segments <= MATMUL_SEGMENTS, by_product, by_segment)
    return tf.reshape(sums, tf.concat([[-1], tf.shape(grads)[1:]], axis=0))


def _whole_paths(lows: tf.Tensor, highs: tf.Tensor, alphas: tf.Tensor) -> tf.Tensor:
    """Every point of the paths from ``lows`` to ``highs``, sample-major.

    ``lows``, ``highs``: ``(n, *feature_shape)``; returns ``(n * n_steps, *feature_shape)`` with
    row ``i * n_steps + k`` at ``lows[i] + alphas[k] * (highs[i] - lows[i])``. Written as one
    batched product ``[1, alpha] @ [low; high - low]`` with an inner dimension of 2, so the
    points are written in one pass, where gathering rows and interpolating took four.
    """
    n = tf.shape(lows)[0]
    flat_lows = tf.reshape(lows, [n, -1])
    ends = tf.stack([flat_lows, tf.reshape(highs, [n, -1]) - flat_lows], axis=1)  # (n, 2, F)
    alphas = tf.cast(alphas, lows.dtype)
    coefficients = tf.stack([tf.ones_like(alphas), alphas], axis=1)  # (n_steps, 2)
    paths = tf.matmul(coefficients[tf.newaxis], ends)  # (n, n_steps, F)
    return tf.reshape(paths, tf.concat([[-1], tf.shape(lows)[1:]], axis=0))


def settle(
    sums: tf.Tensor, carry: tf.Tensor, last_is_complete: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Split a chunk's per-sample sums into finished rows and the carry to the next chunk.

    ``sums`` ``(n_segments, *feature_shape)`` are float64; ``carry`` ``(*feature_shape)`` holds
    the partial sums of the chunk's first sample from earlier chunks (zeros if it starts here).
    Every sample but the chunk's last ends inside the chunk; the last one too when
    ``last_is_complete``. Returns the finished rows and the new carry (zeros if none is open).
    """
    sums = tf.concat([sums[:1] + carry[tf.newaxis], sums[1:]], axis=0)
    n_finished = tf.shape(sums)[0] - tf.cast(tf.logical_not(last_is_complete), tf.int32)
    return sums[:n_finished], tf.where(last_is_complete, tf.zeros_like(carry), sums[-1])


def scale(sums: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, many: bool = False) -> tf.Tensor:
    """IG of finished rows: ``(end - start) * sum w * grad``, in float64.

    ``sums`` are ``(n, *feature_shape)``, or ``(n, K, *feature_shape)`` with ``many`` targets.
    """
    difference = tf.cast(ends, tf.float64) - tf.cast(starts, tf.float64)
    return sums * (difference[:, tf.newaxis] if many else difference)


def along_paths(
    lows: tf.Tensor, highs: tf.Tensor, alphas: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Row ``p``'s point ``lows[p] + alphas[p] * (highs[p] - lows[p])``, and ``highs - lows``.

    ``lows``, ``highs``: ``(n, *feature_shape)``; ``alphas``: ``(n,)``, cast to their dtype.
    """
    shape = tf.concat([[-1], tf.ones([tf.rank(lows) - 1], tf.int32)], axis=0)
    differences = highs - lows
    return lows + tf.reshape(tf.cast(alphas, lows.dtype), shape) * differences, differences


def chunk_points(
    lows: tf.Tensor,
    highs: tf.Tensor,
    alphas: tf.Tensor,
    offset: tf.Tensor,
    segments: tf.Tensor,
    step_ids: tf.Tensor,
) -> tf.Tensor:
    """The path points of one chunk of (sample, step) pairs: ``(n_pairs, *feature_shape)``.

    ``lows``, ``highs``: ``(n_segments, *feature_shape)``, the path ends of the chunk's samples;
    pair ``p`` is step ``step_ids[p]`` of sample ``segments[p]``, and the chunk starts at step
    ``offset`` of its first sample. When the chunk holds most of its samples' paths, those
    whole paths are built in one product and cut to the chunk (at most ``2 * (n_steps - 1)``
    points too many); when the paths are much longer than the chunk (``n_steps`` of thousands),
    only the chunk's own points are built, by gathering, so the cost stays that of the chunk.
    """
    n_pairs = tf.size(segments)
    n_steps = tf.size(alphas)
    n_segments = tf.shape(lows)[0]

    def whole_paths() -> tf.Tensor:
        paths = _whole_paths(lows, highs, alphas)
        return paths[offset : offset + tf.cast(n_pairs, offset.dtype)]

    def own_points() -> tf.Tensor:
        pair_alphas = tf.gather(alphas, step_ids)
        points, _ = along_paths(tf.gather(lows, segments), tf.gather(highs, segments), pair_alphas)
        return points

    return tf.cond(n_segments * n_steps <= 2 * n_pairs, whole_paths, own_points)


def _per_pair(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``values`` ``(n, [K])`` reshaped to broadcast over ``like`` ``(n, [K,] *feature_shape)``."""
    trailing = tf.ones([tf.rank(like) - tf.rank(values)], tf.int32)
    return tf.reshape(values, tf.concat([tf.shape(values), trailing], axis=0))


class IdgiTerms(NamedTuple):
    """One chunk's IDGI terms, and what the next chunk needs from it.

    Attributes
    ----------
    terms
        Per attributed tensor ``(n_pairs, [K,] *feature_shape)`` float64: pair ``i``'s
        ``g_i**2 / sum(g_i**2) * (F(x_{i+1}) - F(x_i))``, zero for a sample's last point and
        for the chunk's last pair when its sample goes on into the next chunk.
    opening
        Per attributed tensor ``([K,] *feature_shape)``: the term of the previous chunk's last
        pair, whose next point is this chunk's first; it belongs to this chunk's first sample.
    pending, pending_output
        This chunk's last pair's shares ``g**2 / sum(g**2)`` (zeros when its sample ends here)
        and its output, for the next chunk's ``opening``.
    """

    terms: list
    opening: list
    pending: list
    pending_output: tf.Tensor


def idgi_terms(
    grads: list,
    scalars: tf.Tensor,
    sample_ids: tf.Tensor,
    last_is_complete: tf.Tensor,
    pending: list,
    pending_output: tf.Tensor,
    sign: tf.Tensor,
    many: bool,
) -> IdgiTerms:
    """IDGI (Yang et al., 2023) on one chunk of consecutive path points, sorted by sample and
    in path order within a sample.

    Each interval ``[x_i, x_{i+1}]`` of a path gives its output change ``F(x_{i+1}) - F(x_i)``
    to the features in proportion to ``g_i**2``, ``g_i`` the gradient at ``x_i``; the squares
    are normalised over every feature of every attributed tensor, so a sample's attributions
    add up to ``F(x_m) - F(x_0)`` exactly, whatever the number of points (an interval whose
    gradient is zero everywhere gives nothing). ``sign`` is -1 for paths that run from the
    explained input towards the reference (Blur IG), so the sums are ``F(x_0) - F(x_m)``.

    ``grads`` are per attributed tensor ``(n, [K,] *feature_shape)`` and ``scalars`` the outputs
    ``(n, [K])`` at the chunk's points; ``pending`` and ``pending_output`` the previous chunk's
    (see :class:`IdgiTerms`).
    """
    lead = 2 if many else 1
    squares = [tf.square(tf.cast(g, tf.float64)) for g in grads]
    norms = tf.add_n(
        [
            tf.reduce_sum(tf.reshape(s, tf.concat([tf.shape(s)[:lead], [-1]], axis=0)), axis=-1)
            for s in squares
        ]
    )
    outputs = tf.cast(scalars, tf.float64)
    sign = tf.cast(sign, tf.float64)
    goes_on = tf.concat([tf.equal(sample_ids[1:], sample_ids[:-1]), [False]], axis=0)
    following = tf.concat([outputs[1:], outputs[-1:]], axis=0)
    changes = tf.where(_per_pair(goes_on, outputs), following - outputs, 0.0) * sign
    shares = tf.math.divide_no_nan(changes, norms)
    terms = [s * _per_pair(shares, s) for s in squares]
    change = (outputs[0] - pending_output) * sign  # ([K])
    opening = [p * _per_pair(change[tf.newaxis], p[tf.newaxis])[0] for p in pending]
    last = [
        tf.where(
            last_is_complete,
            tf.zeros_like(s[-1]),
            tf.math.divide_no_nan(s[-1], _per_pair(norms[-1:], s[-1:])[0]),
        )
        for s in squares
    ]
    return IdgiTerms(terms, opening, last, outputs[-1])
