"""The framework-free integrator, driven by analytic numpy gradients and a call counter."""

import math

import numpy as np
import pytest

from ig_plugin._integrate import integrate
from ig_plugin._quadrature import quadrature


class AnalyticGrad:
    """A ``grad_fn`` for ``integrate``: gradients of ``F(x) = sum(x ** power)``, counted.

    Every call is recorded (its number of pairs and which (sample, alpha) pairs it got), so tests
    can check the chunking as well as the result.
    """

    def __init__(self, starts, ends, power):
        self.starts, self.ends, self.power = starts, ends, power
        self.chunk_sizes = []
        self.seen = []

    def __call__(self, sample_ids, alphas, weights):
        assert sample_ids.shape == alphas.shape == weights.shape
        assert (np.diff(sample_ids) >= 0).all(), "sample_ids must be sorted"
        self.chunk_sizes.append(len(sample_ids))
        self.seen.extend(zip(sample_ids.tolist(), alphas.tolist(), strict=True))
        first, last = sample_ids[0], sample_ids[-1]
        parts = []
        for start, end in zip(self.starts, self.ends, strict=True):
            column = (-1,) + (1,) * (start.ndim - 1)
            points = start[sample_ids] + alphas.reshape(column) * (
                end[sample_ids] - start[sample_ids]
            )
            grads = self.power * points.astype(np.float64) ** (self.power - 1)
            part = np.zeros((last - first + 1, *start.shape[1:]))
            np.add.at(part, sample_ids - first, weights.reshape(column) * grads)
            parts.append(part)
        return parts


def seeded(shape, seed, dtype="float64"):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


@pytest.fixture
def paths():
    """Two attributed tensors of different feature shapes, 4 samples."""
    starts = [seeded((4, 3), 0), seeded((4, 2, 2), 1)]
    ends = [seeded((4, 3), 2), seeded((4, 2, 2), 3)]
    return starts, ends


@pytest.mark.parametrize("power", [2, 3])
def test_closed_form_with_gauss_legendre(paths, power):
    starts, ends = paths
    alphas, weights = quadrature("gausslegendre", 4)  # exact for polynomial integrands of degree 7
    result = integrate(AnalyticGrad(starts, ends, power), starts, ends, alphas, weights, 5)
    for attribution, start, end in zip(result, starts, ends, strict=True):
        # IG of sum(x ** p) is x ** p - x' ** p, feature by feature.
        np.testing.assert_allclose(attribution, end**power - start**power, rtol=1e-12, atol=1e-12)


def test_closed_form_with_left_riemann_sum(paths):
    # F = sum(x^2): grad 2(x' + a d), so IG = d * (2x' + 2d * sum(w a)) with sum(w a) = (n-1)/(2n).
    starts, ends = paths
    n_steps = 6
    alphas, weights = quadrature("riemann_left", n_steps)
    result = integrate(AnalyticGrad(starts, ends, 2), starts, ends, alphas, weights, 4)
    for attribution, start, end in zip(result, starts, ends, strict=True):
        d = end - start
        expected = d * (2 * start + 2 * d * (n_steps - 1) / (2 * n_steps))
        np.testing.assert_allclose(attribution, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 10, 40, 41, 1000])
def test_chunking(paths, chunk_size):
    starts, ends = paths
    n_samples, n_steps = 4, 10
    alphas, weights = quadrature("gausslegendre", n_steps)
    grad_fn = AnalyticGrad(starts, ends, 2)
    counts = []
    integrate(grad_fn, starts, ends, alphas, weights, chunk_size, on_chunk=counts.append)

    assert max(grad_fn.chunk_sizes) <= chunk_size
    assert sum(grad_fn.chunk_sizes) == n_samples * n_steps
    assert len(grad_fn.chunk_sizes) == math.ceil(n_samples * n_steps / chunk_size)
    # every (sample, step) pair exactly once
    expected_pairs = sorted((i, a) for i in range(n_samples) for a in alphas.tolist())
    assert sorted(grad_fn.seen) == expected_pairs
    # on_chunk reports each chunk's pair count
    assert counts == grad_fn.chunk_sizes
    assert sum(counts) == n_samples * n_steps


def test_chunk_size_does_not_change_the_result_exactly():
    # Dyadic data and weights: every product and sum is exact in float64, so any summation
    # order must give bit-identical results.
    rng = np.random.default_rng(4)
    starts = [rng.integers(-8, 8, size=(5, 3)) / 4.0]
    ends = [rng.integers(-8, 8, size=(5, 3)) / 4.0]
    n_steps = 8
    alphas, weights = quadrature("riemann_left", n_steps)
    results = [
        integrate(AnalyticGrad(starts, ends, 2), starts, ends, alphas, weights, chunk)[0]
        for chunk in (1, 7, n_steps, 5 * n_steps, 1000)
    ]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_chunk_size_invariance_gauss_legendre(paths):
    starts, ends = paths
    n_steps = 9
    alphas, weights = quadrature("gausslegendre", n_steps)
    results = [
        integrate(AnalyticGrad(starts, ends, 3), starts, ends, alphas, weights, chunk)
        for chunk in (1, 7, n_steps, 4 * n_steps, 1000)
    ]
    for result in results[1:]:
        for got, reference in zip(result, results[0], strict=True):
            np.testing.assert_allclose(got, reference, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_result_keeps_shape_and_dtype(dtype):
    starts = [seeded((3, 2, 2), 5, dtype)]
    ends = [seeded((3, 2, 2), 6, dtype)]
    alphas, weights = quadrature("riemann_middle", 5)
    (result,) = integrate(AnalyticGrad(starts, ends, 2), starts, ends, alphas, weights, 4)
    assert result.shape == (3, 2, 2)
    assert result.dtype == np.dtype(dtype)


def test_inputs_are_not_modified(paths):
    starts, ends = paths
    copies = [a.copy() for a in starts + ends]
    alphas, weights = quadrature("gausslegendre", 3)
    integrate(AnalyticGrad(starts, ends, 2), starts, ends, alphas, weights, 2)
    for original, copy in zip(starts + ends, copies, strict=True):
        np.testing.assert_array_equal(original, copy)
