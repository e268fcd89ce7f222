"""Where the gradients of Expected Gradients are taken: the drawn pairs of each span of samples.

Numpy only. A plan maps a span of samples ``first..stop-1`` to the
:class:`~ig_plugin._gradient_loop.DrawnPairs` of those samples (sample ids counted from the
span's start), so that the compiled loop never sees more than one span's pairs.

Sampled mode: each sample draws its own ``n_draws`` (background row, alpha) pairs, row uniform
among the M rows and alpha uniform on [0, 1), weight ``1 / n_draws``. The draws of sample ``i``
come from a random stream of its own, derived from the explain's entropy (the seed) and ``i``
(``numpy.random.SeedSequence(entropy, spawn_key=(i,))``), so they do not depend on how samples
are cut into spans, on ``internal_batch_size``, or on the other samples. Building a stream
costs about 30 microseconds per sample, far below the sample's gradients.

Deterministic mode: every sample takes every background row at every Gauss-Legendre node,
weight ``w_k / M``: the mean over the rows of Integrated Gradients.
"""

from __future__ import annotations

import numpy as np

from ig_plugin._engine.plans import DrawnPairs, PlanPerSpan


def fresh_entropy() -> int:
    """Entropy for an unseeded explain: 128 random bits from the operating system."""
    entropy: int = np.random.SeedSequence().entropy  # type: ignore[assignment]
    return entropy


def sample_draws(
    entropy: int, sample: int, n_draws: int, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """The background rows ``(n_draws,)`` int64 and alphas ``(n_draws,)`` float64 of one sample.

    The same ``entropy`` and ``sample`` (its index in X) always give the same draws.
    """
    stream = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(sample,)))
    )
    rows = stream.integers(n_rows, size=n_draws, dtype=np.int64)
    alphas = stream.random(n_draws)
    return rows, alphas


def sampled_plan(entropy: int, n_draws: int, n_rows: int) -> PlanPerSpan:
    """Sampled Expected Gradients: ``n_draws`` pairs per sample from the sample's own stream."""
    weight = 1.0 / n_draws

    def plan(first: int, stop: int) -> DrawnPairs:
        n_pairs = (stop - first) * n_draws
        rows, alphas = np.empty(n_pairs, np.int64), np.empty(n_pairs)
        for offset, sample in enumerate(range(first, stop)):
            pairs = slice(offset * n_draws, (offset + 1) * n_draws)
            rows[pairs], alphas[pairs] = sample_draws(entropy, sample, n_draws, n_rows)
        samples = np.repeat(np.arange(stop - first, dtype=np.int64), n_draws)
        return DrawnPairs(samples, rows, alphas, np.full(n_pairs, weight))

    return PlanPerSpan(plan, n_draws)


def every_row_plan(n_rows: int, alphas: np.ndarray, weights: np.ndarray) -> PlanPerSpan:
    """Deterministic Expected Gradients: every row at every node, weight ``weights[k] / n_rows``."""
    n_nodes = len(alphas)
    # One sample's pairs, row-major: row r at node k is pair r * n_nodes + k.
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), n_nodes)
    sample_alphas = np.tile(alphas, n_rows)
    sample_weights = np.tile(weights, n_rows) / n_rows

    def plan(first: int, stop: int) -> DrawnPairs:
        n = stop - first
        samples = np.repeat(np.arange(n, dtype=np.int64), n_rows * n_nodes)
        return DrawnPairs(
            samples, np.tile(rows, n), np.tile(sample_alphas, n), np.tile(sample_weights, n)
        )

    return PlanPerSpan(plan, n_rows * n_nodes)
