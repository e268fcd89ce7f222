"""Attribution values proven by closed forms, completeness and invariances."""

import itertools
import warnings

import numpy as np
import pytest
import tensorflow as tf
from compat import keras
from models import METHODS, linear_model, power_sum_model, seeded_floats

from ig_plugin import IntegratedGradients
from ig_plugin._engine import spans as _spans

N_FEATURES = 3


@pytest.fixture(scope="module")
def square_model():
    return power_sum_model(N_FEATURES, 2)


@pytest.fixture(scope="module")
def cube_model():
    return power_sum_model(N_FEATURES, 3)


@pytest.fixture(scope="module")
def x():
    return seeded_floats((4, N_FEATURES), seed=10)


# --- (a) linear model: IG = w * (x - x') for every method and baseline ---------------------------


def baseline_cases(shape):
    array = seeded_floats(shape, seed=11)
    return {"none": (None, 0.0), "number": (0.75, 0.75), "array": (array, array)}


@pytest.mark.parametrize("baseline_kind", ["none", "number", "array"])
@pytest.mark.parametrize("method", METHODS)
def test_linear_model_every_method(linear, linear_weights, linear_data, method, baseline_kind):
    baselines, baseline_values = baseline_cases(linear_data.shape)[baseline_kind]
    explainer = IntegratedGradients(linear, method=method, n_steps=4)
    for target in (0, 1):
        explanation = explainer.explain(linear_data, baselines=baselines, target=target)
        expected = linear_weights[:, target] * (linear_data - baseline_values)
        np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_linear_model_doubling_the_weights_doubles_attributions(linear_weights, linear_data):
    single = IntegratedGradients(linear_model(linear_weights)).explain(linear_data, target=1)
    double = IntegratedGradients(linear_model(2 * linear_weights)).explain(linear_data, target=1)
    np.testing.assert_allclose(double.attributions[0], 2 * single.attributions[0], rtol=1e-6)


# --- (b) models with a known integral ------------------------------------------------------------


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_trapezoid"])
def test_square_model_exact(square_model, x, method):
    """F = sum(x^2): the integrand is linear in alpha, so these rules give x^2 - x'^2 exactly."""
    baselines = seeded_floats(x.shape, seed=12)
    explanation = IntegratedGradients(square_model, method=method, n_steps=3).explain(
        x, baselines=baselines
    )
    expected = x.astype(np.float64) ** 2 - baselines.astype(np.float64) ** 2
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["riemann_left", "riemann_right"])
def test_square_model_riemann_end_rules(square_model, x, method):
    """Left/right sums: IG = d * (2x' + 2d * sum(w a)), with sum(w a) = 1/2 -/+ 1/(2n)."""
    n_steps = 5
    baselines = seeded_floats(x.shape, seed=12)
    explanation = IntegratedGradients(square_model, method=method, n_steps=n_steps).explain(
        x, baselines=baselines
    )
    first_moment = 0.5 + (0.5 if method == "riemann_right" else -0.5) / n_steps
    d = x.astype(np.float64) - baselines
    expected = d * (2 * baselines + 2 * d * first_moment)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_steps", [2, 5])
def test_cube_model_gauss_legendre_exact(cube_model, x, n_steps):
    """F = sum(x^3): quadratic integrand, exact for Gauss-Legendre with 2 nodes or more."""
    explanation = IntegratedGradients(cube_model, n_steps=n_steps).explain(x, baselines=-0.5)
    expected = x.astype(np.float64) ** 3 - (-0.5) ** 3
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-5)


def test_cube_model_trapezoid_error_is_known_and_converges(cube_model, x):
    """Trapezoid on the quadratic integrand 3(x' + a d)^2 errs by exactly h^2 d^3 / 2."""
    errors = []
    for n_steps in (5, 9, 17):
        explanation = IntegratedGradients(
            cube_model, method="riemann_trapezoid", n_steps=n_steps
        ).explain(x)
        d = x.astype(np.float64)
        error = explanation.attributions[0] - d**3
        h = 1.0 / (n_steps - 1)
        np.testing.assert_allclose(error, h**2 * d**3 / 2, rtol=1e-3, atol=2e-6)
        errors.append(np.abs(error).max())
    assert errors[0] > 3.5 * errors[1] > 3.5**2 * errors[2]


# --- (c) completeness on a smooth model ----------------------------------------------------------


@pytest.fixture(scope="module")
def smooth_explainer(mlp):
    return IntegratedGradients(mlp, n_steps=50)


def test_completeness_smooth_mlp(smooth_explainer, mlp, mlp_data):
    baselines = seeded_floats(mlp_data.shape, seed=13)
    explanation = smooth_explainer.explain(mlp_data, baselines=baselines, target=[0, 1, 2, 0, 1, 2])
    rows = np.arange(len(mlp_data))
    targets = [0, 1, 2, 0, 1, 2]
    gap = (
        np.asarray(mlp(mlp_data))[rows, targets] - np.asarray(mlp(baselines))[rows, targets]
    ).astype(np.float64)
    total = explanation.attributions[0].sum(axis=1, dtype=np.float64)
    # completeness, recomputed here from the model, and the reported deltas agree with it
    assert np.all(np.abs(total - gap) <= 1e-4 * np.maximum(np.abs(gap), 1e-2))
    np.testing.assert_allclose(explanation.deltas, total - gap, atol=1e-6)
    # the gaps are not trivially zero
    assert np.abs(gap).min() > 1e-3


def test_completeness_fails_with_too_few_riemann_steps(mlp, mlp_data):
    """Sanity check of the delta: a crude rule leaves a visible gap."""
    explanation = IntegratedGradients(mlp, method="riemann_left", n_steps=2).explain(
        mlp_data, baselines=3.0, target=0
    )
    assert np.abs(explanation.deltas).max() > 1e-3


# --- (d) internal_batch_size invariance ----------------------------------------------------------


def test_internal_batch_size_invariance(mlp, mlp_data):
    # 6 samples x 7 steps: chunks shorter than a path (1, 3), one path (7), paths cut across
    # chunks (10, 41), whole paths (14), and everything in one chunk (1000); each also with a
    # progress bar, which splits the chunks over several compiled calls.
    results = []
    for size, progress_bar in itertools.product((1, 3, 7, 10, 14, 41, 1000), (False, True)):
        explainer = IntegratedGradients(mlp, n_steps=7, internal_batch_size=size)
        explanation = explainer.explain(
            mlp_data, target=2, baselines=0.3, progress_bar=progress_bar
        )
        results.append((explanation.attributions[0], explanation.deltas, explanation.predictions))
    for attributions, deltas, predictions in results[1:]:
        np.testing.assert_allclose(attributions, results[0][0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(deltas, results[0][1], atol=1e-6)
        np.testing.assert_allclose(predictions, results[0][2], rtol=1e-6)


def test_progress_bar_spans_change_nothing(mlp):
    # 20 samples x 7 steps in chunks of 2: a progress bar makes spans of one sample, each of
    # four chunks, the last of which is cut short by the end of the path.
    data = seeded_floats((20, 4), seed=8)
    explainer = IntegratedGradients(mlp, n_steps=7, internal_batch_size=2)
    plain = explainer.explain(data, target=1)
    reported = explainer.explain(data, target=1, progress_bar=True)
    reference = IntegratedGradients(mlp, n_steps=7, internal_batch_size=1000).explain(
        data, target=1
    )
    for explanation in (plain, reported):
        np.testing.assert_allclose(
            explanation.attributions[0], reference.attributions[0], rtol=1e-5, atol=1e-7
        )


@pytest.mark.parametrize("span_bytes", [1, 64, 100])
def test_spans_of_few_samples_change_nothing(mlp, mlp_data, monkeypatch, span_bytes):
    # A sample's path ends take 2 x 4 float32 = 32 bytes: spans of 1, 2 and 3 samples.
    target = np.arange(len(mlp_data)) % 3
    explainer = IntegratedGradients(mlp, n_steps=7, internal_batch_size=5)
    reference = explainer.explain(mlp_data, target=target, baselines=0.3)
    monkeypatch.setattr(_spans, "SPAN_BYTES", span_bytes)
    spanned = explainer.explain(mlp_data, target=target, baselines=0.3)
    np.testing.assert_allclose(
        spanned.attributions[0], reference.attributions[0], rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(spanned.deltas, reference.deltas, atol=1e-7)


# --- (e) dtypes (alibi bug 13) -------------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [("float16", 1e-2), ("float32", 1e-5), ("float64", 1e-5)])
def test_attributions_keep_input_dtype(linear, linear_weights, linear_data, dtype, rtol):
    X = linear_data.astype(dtype)
    explanation = IntegratedGradients(linear, n_steps=3).explain(X, target=0)
    assert explanation.attributions[0].dtype == np.dtype(dtype)
    expected = linear_weights[:, 0] * X.astype(np.float64)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=rtol, atol=rtol * 1e-2)


def test_float64_input_on_float32_model_is_complete(mlp):
    x = seeded_floats((3, 4), seed=14, dtype="float64")
    explanation = IntegratedGradients(mlp, n_steps=50).explain(x, target=1)
    assert explanation.attributions[0].dtype == np.float64
    assert explanation.deltas.shape == (3,)
    assert np.abs(explanation.deltas).max() < 1e-5


# --- a path that gradients do not follow -------------------------------------------------------


class Quantised(keras.Model):
    """``y = sum(w * round_to_int(10 x)) / 10``: an integer cast blocks every gradient."""

    def __init__(self):
        super().__init__()
        self.w = tf.constant([[1.0], [2.0], [-1.0]])

    def call(self, x):
        steps = tf.cast(tf.cast(10.0 * x, tf.int32), x.dtype)
        return tf.matmul(steps, self.w) / 10.0


def test_all_zero_gradients_with_a_changed_output_warn(x):
    with pytest.warns(UserWarning, match=r"4 of 4 samples got all-zero attributions.*integer"):
        explanation = IntegratedGradients(Quantised(), n_steps=5).explain(x)
    np.testing.assert_array_equal(explanation.attributions[0], 0)


def test_no_warning_where_gradients_flow_or_nothing_changes(x, square_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IntegratedGradients(square_model, n_steps=5).explain(x)
        # x equal to the baseline: all zero, and rightly so
        IntegratedGradients(Quantised(), n_steps=5).explain(x, baselines=x)
