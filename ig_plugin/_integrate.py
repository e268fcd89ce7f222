"""The IG integral, streamed: ``(end - start) * sum_i w_i * grad(start + a_i (end - start))``.

No TensorFlow here. The ``N * n_steps`` (sample, step) pairs are taken in sample-major order, in
chunks of at most ``chunk_size`` pairs; each chunk goes through ``grad_fn``, which returns the
weighted gradient sums of the samples it touched, and those are added up as chunks finish. Memory
is bounded by the chunk, whatever ``N * n_steps`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: ``grad_fn(sample_ids, alphas, weights)``: for a chunk of pairs (``sample_ids`` sorted, all
#: arrays of shape ``(n_pairs,)``), return per attributed tensor an array of shape
#: ``(sample_ids[-1] - sample_ids[0] + 1, *feature_shape)`` whose row ``j`` is the sum of
#: ``weight * gradient`` over the chunk's pairs of sample ``sample_ids[0] + j``.
GradFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Sequence[np.ndarray]]


def integrate(
    grad_fn: GradFn,
    starts: Sequence[np.ndarray],
    ends: Sequence[np.ndarray],
    alphas: np.ndarray,
    weights: np.ndarray,
    chunk_size: int,
    on_chunk: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Integrate gradients along the straight paths from ``starts`` to ``ends``.

    Parameters
    ----------
    grad_fn
        Weighted gradient sums for a chunk of pairs; see :data:`GradFn`.
    starts, ends
        Path ends per attributed tensor, each of shape ``(N, *feature_shape)``.
    alphas, weights
        Quadrature nodes on ``[0, 1]`` and their weights, shape ``(n_steps,)``.
    chunk_size
        Most pairs per ``grad_fn`` call.
    on_chunk
        Called with the number of pairs after each chunk (a progress bar's ``update``).

    Returns
    -------
    list of numpy arrays
        Attributions per attributed tensor, shaped and typed like its ``starts`` entry.
    """
    n_samples, n_steps = starts[0].shape[0], len(alphas)
    # float64 sums: thousands of small terms lose nothing, whatever the model's precision.
    sums = [np.zeros(start.shape, dtype=np.float64) for start in starts]
    n_pairs = n_samples * n_steps
    for first in range(0, n_pairs, chunk_size):
        pairs = np.arange(first, min(first + chunk_size, n_pairs))
        sample_ids, step_ids = np.divmod(pairs, n_steps)
        parts = grad_fn(sample_ids, alphas[step_ids], weights[step_ids])
        rows = slice(sample_ids[0], sample_ids[-1] + 1)
        for total, part in zip(sums, parts, strict=True):
            total[rows] += part
        if on_chunk is not None:
            on_chunk(len(pairs))
    return [
        ((end.astype(np.float64) - start) * total).astype(start.dtype, copy=False)
        for start, end, total in zip(starts, ends, sums, strict=True)
    ]
