"""Quadrature rules on [0, 1], checked against exact integrals and against alibi's nodes."""

import math

import numpy as np
import pytest
from alibi.utils.approximation_methods import approximation_parameters
from models import METHODS

from ig_plugin._integral.quadrature import MIN_STEPS, quadrature

STEPS = (2, 3, 7, 50)


def test_every_method_is_covered():
    assert set(MIN_STEPS) == set(METHODS)


@pytest.mark.parametrize("n_steps", STEPS)
@pytest.mark.parametrize("method", METHODS)
def test_weights_sum_to_one_and_nodes_in_unit_interval(method, n_steps):
    alphas, weights = quadrature(method, n_steps)
    assert alphas.shape == weights.shape == (n_steps,)
    assert np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-12)
    assert (alphas >= 0).all() and (alphas <= 1).all()
    assert (weights > 0).all()


@pytest.mark.parametrize(
    "method", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"]
)
def test_single_step_rules(method):
    alphas, weights = quadrature(method, 1)
    assert weights.tolist() == [1.0]
    expected = {"riemann_left": 0.0, "riemann_right": 1.0}.get(method, 0.5)
    assert alphas.tolist() == [expected]


@pytest.mark.parametrize("n_steps", [1, 2, 3, 5, 10])
def test_gauss_legendre_exact_up_to_degree_2n_minus_1(n_steps):
    alphas, weights = quadrature("gausslegendre", n_steps)
    for degree in range(2 * n_steps):
        assert np.isclose(weights @ alphas**degree, 1.0 / (degree + 1), rtol=1e-12, atol=1e-14)
    # and not beyond: for a**(2n) the error is exactly (n!)^4 / ((2n + 1) ((2n)!)^2) on [0, 1].
    degree = 2 * n_steps
    error = 1.0 / (degree + 1) - weights @ alphas**degree
    expected = math.factorial(n_steps) ** 4 / ((degree + 1) * math.factorial(degree) ** 2)
    assert np.isclose(error, expected, rtol=1e-3, atol=0)


@pytest.mark.parametrize("method", ["riemann_middle", "riemann_trapezoid"])
@pytest.mark.parametrize("n_steps", STEPS)
def test_linear_functions_integrated_exactly(method, n_steps):
    alphas, weights = quadrature(method, n_steps)
    # integral_0^1 (3 - 2a) da = 2
    assert np.isclose(weights @ (3.0 - 2.0 * alphas), 2.0, rtol=1e-12)


@pytest.mark.parametrize("n_steps", STEPS)
def test_left_and_right_sums_miss_linear_by_half_a_step(n_steps):
    # integral_0^1 a da = 1/2; the left sum is short by 1/(2n) and the right sum over by 1/(2n).
    left_alphas, left_weights = quadrature("riemann_left", n_steps)
    right_alphas, right_weights = quadrature("riemann_right", n_steps)
    assert np.isclose(left_weights @ left_alphas, 0.5 - 0.5 / n_steps, rtol=1e-12)
    assert np.isclose(right_weights @ right_alphas, 0.5 + 0.5 / n_steps, rtol=1e-12)


@pytest.mark.parametrize("n_steps", STEPS)
def test_trapezoid_nodes_and_halved_end_weights(n_steps):
    alphas, weights = quadrature("riemann_trapezoid", n_steps)
    np.testing.assert_allclose(alphas, np.linspace(0, 1, n_steps), rtol=0, atol=1e-15)
    interval = 1.0 / (n_steps - 1)
    assert np.isclose(weights[0], interval / 2) and np.isclose(weights[-1], interval / 2)
    np.testing.assert_allclose(weights[1:-1], interval, rtol=1e-12)


@pytest.mark.parametrize("n_steps", STEPS)
@pytest.mark.parametrize("method", METHODS)
def test_nodes_match_alibi(method, n_steps):
    _, alibi_alphas = approximation_parameters(method)
    alphas, _ = quadrature(method, n_steps)
    np.testing.assert_allclose(alphas, np.asarray(alibi_alphas(n_steps)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_steps", STEPS)
@pytest.mark.parametrize(
    "method", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"]
)
def test_weights_match_alibi_where_alibi_is_right(method, n_steps):
    alibi_weights, _ = approximation_parameters(method)
    _, weights = quadrature(method, n_steps)
    np.testing.assert_allclose(weights, np.asarray(alibi_weights(n_steps)), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("n_steps", STEPS)
def test_trapezoid_weights_fix_alibi_bug_11(n_steps):
    """alibi's trapezoid weights sum to 1 - 1/n, which shrinks every attribution."""
    alibi_weights, _ = approximation_parameters("riemann_trapezoid")
    alibi_sum = float(np.sum(alibi_weights(n_steps)))
    assert np.isclose(alibi_sum, 1.0 - 1.0 / n_steps)
    _, weights = quadrature("riemann_trapezoid", n_steps)
    assert np.isclose(weights.sum(), 1.0)
    assert not np.allclose(weights, alibi_weights(n_steps))


@pytest.mark.parametrize("n_steps", [1, 2, 7, 50, 149, 150, 151, 400])
def test_gauss_legendre_nodes_equal_numpys_leggauss(n_steps):
    """The O(n^2) nodes are the nodes alibi takes from numpy, to rounding."""
    alphas, weights = quadrature("gausslegendre", n_steps)
    nodes, reference = np.polynomial.legendre.leggauss(n_steps)
    np.testing.assert_allclose(alphas, 0.5 * (nodes + 1), rtol=0, atol=1e-14)
    np.testing.assert_allclose(weights, 0.5 * reference, rtol=1e-11, atol=1e-14)


def test_gauss_legendre_with_thousands_of_steps():
    """n_steps=5000 once took 10 s for the nodes alone; exact for a**k up to k = 2n - 1."""
    alphas, weights = quadrature("gausslegendre", 5000)
    assert np.all(np.diff(alphas) > 0) and (weights > 0).all()
    for degree in (0, 1, 100, 2000, 9999):
        assert np.isclose(weights @ alphas**degree, 1.0 / (degree + 1), rtol=1e-9, atol=0)
