"""The compiled loop on its own: closed forms of ``F(x) = sum x**3``, without Keras.

IG of ``sum x**3`` from ``a`` to ``x`` is ``x**3 - a**3`` per feature; Gauss-Legendre with two or
more nodes integrates its (quadratic) integrand exactly. Every chunk size cuts the pairs
differently and must give the same sums.
"""

import numpy as np
import pytest
import tensorflow as tf

from ig_plugin._engine.loop import integrate
from ig_plugin._engine.plans import DrawnPairs, SharedSteps
from ig_plugin._integral.quadrature import quadrature

CHUNKS = (1, 2, 3, 7, 64)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 4))
STARTS = RNG.normal(size=(5, 4))
BACKGROUND = RNG.normal(size=(3, 4))


def cubes(points, sample_ids):
    return tf.reduce_sum(points[0] ** 3, axis=1)


def cubes_and_squares(points, sample_ids):
    """Two targets per pair: K = 2."""
    return tf.stack([tf.reduce_sum(points[0] ** 3, 1), tf.reduce_sum(points[0] ** 2, 1)], axis=1)


@tf.function
def run(starts, ends, plan, chunk_size, many):
    scalars_at = cubes_and_squares if many else cubes
    n_targets = 2 if many else None
    return integrate([starts], [ends], plan, chunk_size, scalars_at, n_targets)[0]


def shared_steps(n_steps=3):
    return SharedSteps(*map(tf.constant, quadrature("gausslegendre", n_steps)))


def drawn_pairs():
    """Every sample against every background row at 3 Gauss-Legendre nodes, weight w / M: the
    deterministic Expected Gradients, ``x**3 - mean(b**3)``."""
    alphas, weights = quadrature("gausslegendre", 3)
    n, m, s = len(X), len(BACKGROUND), len(alphas)
    samples = np.repeat(np.arange(n), m * s)
    starts = np.tile(np.repeat(np.arange(m), s), n)
    return DrawnPairs(
        tf.constant(samples, tf.int64),
        tf.constant(starts, tf.int64),
        tf.constant(np.tile(alphas, n * m)),
        tf.constant(np.tile(weights, n * m) / m),
    )


@pytest.mark.parametrize("chunk", CHUNKS)
def test_shared_steps(chunk):
    result = run(
        tf.constant(STARTS), tf.constant(X), shared_steps(), tf.constant(chunk, tf.int64), False
    )
    np.testing.assert_allclose(result.numpy(), X**3 - STARTS**3, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_drawn_pairs(chunk):
    result = run(
        tf.constant(BACKGROUND), tf.constant(X), drawn_pairs(), tf.constant(chunk, tf.int64), False
    )
    expected = X**3 - (BACKGROUND**3).mean(axis=0)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("kind", ["shared", "drawn"])
def test_several_targets_get_their_own_axis(chunk, kind):
    starts, plan = (STARTS, shared_steps()) if kind == "shared" else (BACKGROUND, drawn_pairs())
    result = run(tf.constant(starts), tf.constant(X), plan, tf.constant(chunk, tf.int64), True)
    assert result.shape == (5, 2, 4)
    # Shared: each sample's own start; drawn: the mean over the background rows.
    cube_start = starts**3 if kind == "shared" else (starts**3).mean(axis=0)
    square_start = starts**2 if kind == "shared" else (starts**2).mean(axis=0)
    np.testing.assert_allclose(result[:, 0].numpy(), X**3 - cube_start, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result[:, 1].numpy(), X**2 - square_start, rtol=1e-10, atol=1e-12)


def test_long_paths_in_short_chunks():
    """Paths of 400 nodes in chunks of 7: each chunk builds only its own points."""
    plan = shared_steps(400)
    result = run(tf.constant(STARTS), tf.constant(X), plan, tf.constant(7, tf.int64), False)
    np.testing.assert_allclose(result.numpy(), X**3 - STARTS**3, rtol=1e-9, atol=1e-11)
