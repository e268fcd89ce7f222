"""Summing a chunk's weighted gradients per sample: the matrix product (few samples in the chunk)
and the segment sum (many, as the adaptive rule's one row per node) give the same sums."""

import numpy as np
import pytest
import tensorflow as tf

from ig_plugin._engine.path_math import MATMUL_SEGMENTS, weighted_sums


@pytest.mark.parametrize("n_segments", [1, MATMUL_SEGMENTS, MATMUL_SEGMENTS + 1, 300])
def test_weighted_sums_match_numpy_on_both_sides_of_the_switch(n_segments):
    rng = np.random.default_rng(n_segments)
    n_rows = max(n_segments, 2 * n_segments - 1)
    # Every segment has a row, some have several: sorted ids as a chunk's sample ids are.
    segments = np.sort(
        np.concatenate([np.arange(n_segments), rng.integers(0, n_segments, n_rows - n_segments)])
    )
    grads = rng.normal(size=(n_rows, 3, 2)).astype(np.float32)
    weights = rng.normal(size=n_rows).astype(np.float32)
    expected = np.zeros((n_segments, 3, 2))
    np.add.at(expected, segments, grads * weights[:, None, None])
    sums = weighted_sums(
        tf.constant(grads),
        tf.constant(segments, tf.int64),
        tf.constant(n_segments, tf.int64),
        tf.constant(weights),
    )
    assert sums.shape == (n_segments, 3, 2)
    np.testing.assert_allclose(sums.numpy(), expected, rtol=1e-5, atol=1e-5)
