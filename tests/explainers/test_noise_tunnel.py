"""NoiseTunnel: stdevs=0 gives the wrapped explainer's attributions exactly; on a linear model
smoothgrad, smoothgrad_sq and vargrad are within 4 standard errors of their expectations;
per-input stdevs; seeded noise; targets from the noise-free X; one noisy copy at a time.

IG of the linear model ``F = x @ w`` from baseline x' is ``w * (x - x')``, so a noisy copy
``x + e`` with ``e ~ N(0, s**2)`` gets ``w * (x + e - x')``: the mean over copies estimates
``w * (x - x')``, the mean of squares ``w**2 * ((x - x')**2 + s**2)``, and the population
variance over n copies ``w**2 * s**2 * (n - 1) / n``.
"""

from functools import partial

import numpy as np
import pytest
from concurrency import run_together
from models import linear_multi_input_model, seeded_floats

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


@pytest.fixture(scope="module")
def linear_ig(linear):
    return IntegratedGradients(linear, n_steps=2)


@pytest.mark.parametrize("nt_type", NT_TYPES)
def test_zero_noise_gives_the_wrapped_attributions_exactly(linear_ig, linear_data, nt_type):
    plain = linear_ig.explain(linear_data, target=1, baselines=0.5)
    smoothed = NoiseTunnel(linear_ig, nt_type, nt_samples=4, stdevs=0.0).explain(
        linear_data, target=1, baselines=0.5
    )
    expected = {
        "smoothgrad": plain.attributions[0],
        "smoothgrad_sq": (plain.attributions[0].astype(np.float64) ** 2).astype(np.float32),
        "vargrad": np.zeros_like(plain.attributions[0]),
    }[nt_type]
    np.testing.assert_array_equal(smoothed.attributions[0], expected)
    np.testing.assert_array_equal(smoothed.deltas, plain.deltas)
    np.testing.assert_array_equal(smoothed.predictions, plain.predictions)


def test_zero_noise_over_seeded_expected_gradients_is_expected_gradients(mlp, mlp_data):
    explainer = ExpectedGradients(mlp, seeded_floats((4, 4), seed=40), n_samples=12, seed=1)
    plain = explainer.explain(mlp_data, target=0)
    smoothed = NoiseTunnel(explainer, nt_samples=3, stdevs=0.0).explain(mlp_data, target=0)
    np.testing.assert_array_equal(smoothed.attributions[0], plain.attributions[0])
    np.testing.assert_array_equal(smoothed.expected_value, plain.expected_value)


@pytest.fixture(scope="module")
def noisy_data():
    return seeded_floats((6, 3), seed=41)


def _smoothed(linear_ig, X, nt_type, nt_samples, stdev, seed=3):
    return (
        NoiseTunnel(linear_ig, nt_type, nt_samples=nt_samples, stdevs=stdev, seed=seed)
        .explain(X, target=0, baselines=0.25)
        .attributions[0]
    )


def test_smoothgrad_is_within_four_standard_errors(linear_ig, linear_weights, noisy_data):
    n, s, w = 300, 0.7, linear_weights[:, 0]
    result = _smoothed(linear_ig, noisy_data, "smoothgrad", n, s)
    standard_error = np.abs(w) * s / np.sqrt(n)
    assert np.all(np.abs(result - w * (noisy_data - 0.25)) <= 4 * standard_error)


def test_smoothgrad_sq_is_within_four_standard_errors(linear_ig, linear_weights, noisy_data):
    n, s, w = 300, 0.7, linear_weights[:, 0].astype(np.float64)
    d = noisy_data.astype(np.float64) - 0.25
    result = _smoothed(linear_ig, noisy_data, "smoothgrad_sq", n, s)
    # Var((d + e)**2) = 4 d**2 s**2 + 2 s**4 for e ~ N(0, s**2).
    standard_error = w**2 * np.sqrt(4 * d**2 * s**2 + 2 * s**4) / np.sqrt(n)
    assert np.all(np.abs(result - w**2 * (d**2 + s**2)) <= 4 * standard_error)


def test_vargrad_is_within_four_standard_errors(linear_ig, linear_weights, noisy_data):
    n, s, w = 300, 0.7, linear_weights[:, 0].astype(np.float64)
    result = _smoothed(linear_ig, noisy_data, "vargrad", n, s)
    # The variance of n normal values has standard deviation about s**2 * sqrt(2 / (n - 1)).
    expected = w**2 * s**2 * (n - 1) / n
    standard_error = w**2 * s**2 * np.sqrt(2 / (n - 1))
    assert np.all(np.abs(result - expected) <= 4 * standard_error)
    assert np.all(result > 0)


def test_stdevs_per_input():
    """Input ``a`` without noise keeps its exact attribution; input ``b`` gets noise."""
    w_a, w_b = np.array([[1.0], [-2.0], [0.5]]), np.array([[3.0], [-1.0]])
    explainer = IntegratedGradients(linear_multi_input_model(w_a, w_b), n_steps=2)
    X = [seeded_floats((4, 3), seed=42), seeded_floats((4, 2), seed=43)]
    smoothed = NoiseTunnel(explainer, nt_samples=3, stdevs=(0.0, 0.5), seed=0).explain(X)
    np.testing.assert_allclose(smoothed.attributions[0], w_a[:, 0] * X[0], rtol=1e-6)
    assert not np.allclose(smoothed.attributions[1], w_b[:, 0] * X[1], rtol=1e-3)


def test_seeded_noise_repeats_and_seeds_differ(linear_ig, noisy_data):
    first = _smoothed(linear_ig, noisy_data, "smoothgrad", 3, 0.5, seed=5)
    np.testing.assert_array_equal(_smoothed(linear_ig, noisy_data, "smoothgrad", 3, 0.5, 5), first)
    assert not np.allclose(_smoothed(linear_ig, noisy_data, "smoothgrad", 3, 0.5, 6), first)
    unseeded = NoiseTunnel(linear_ig, nt_samples=3, stdevs=0.5)
    one, two = (unseeded.explain(noisy_data, target=0).attributions[0] for _ in range(2))
    assert not np.allclose(one, two)


def test_target_fn_is_applied_once_to_the_noise_free_predictions(mlp, mlp_data):
    """Noise this large changes the predicted class of some copies: the targets must still be
    those of X itself."""
    argmax = partial(np.argmax, axis=1)
    by_fn = NoiseTunnel(
        IntegratedGradients(mlp, target_fn=argmax), nt_samples=4, stdevs=3.0, seed=7
    )
    explanation = by_fn.explain(mlp_data)
    clean = argmax(mlp(mlp_data).numpy())
    np.testing.assert_array_equal(explanation.target, clean)
    given = NoiseTunnel(IntegratedGradients(mlp), nt_samples=4, stdevs=3.0, seed=7)
    np.testing.assert_array_equal(
        explanation.attributions[0], given.explain(mlp_data, target=clean).attributions[0]
    )
    np.testing.assert_allclose(explanation.predictions, mlp(mlp_data).numpy(), rtol=1e-6)


def test_one_noise_tunnel_in_many_threads(mlp, mlp_data):
    """A served NoiseTunnel is called from many threads at once: with a layer (hooks in the
    trace) and a target_fn (a copy of the wrapped explainer sharing its compiled passes), every
    thread gets the result of a call made alone."""
    wrapped = IntegratedGradients(
        mlp, layer=mlp.layers[1], target_fn=partial(np.argmax, axis=1), n_steps=8
    )
    smooth = NoiseTunnel(wrapped, "vargrad", nt_samples=3, stdevs=0.5, seed=3)
    alone = smooth.explain(mlp_data).attributions[0]
    results = []
    run_together([lambda: results.append(smooth.explain(mlp_data).attributions[0])] * 4)
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, alone, rtol=1e-6, atol=1e-7)
    assert np.abs(alone).max() > 0  # vargrad of real noise is not all zeros


def test_one_noisy_copy_of_X_at_a_time(linear_ig, noisy_data, monkeypatch):
    """The wrapped explainer sees N rows per call, nt_samples times, each with its own noise."""
    seen = []
    explain = IntegratedGradients.explain

    def recording(self, X, **kwargs):
        seen.append(X.copy())
        return explain(self, X, **kwargs)

    monkeypatch.setattr(IntegratedGradients, "explain", recording)
    NoiseTunnel(linear_ig, nt_samples=5, stdevs=0.1, seed=0).explain(noisy_data, target=0)
    assert [x.shape for x in seen] == [noisy_data.shape] * 5
    assert len({x.tobytes() for x in seen}) == 5


def test_explanation(linear_ig, noisy_data):
    explanation = NoiseTunnel(linear_ig, "vargrad", nt_samples=2, stdevs=0.1, seed=0).explain(
        noisy_data, target=0
    )
    assert explanation.meta["name"] == "NoiseTunnel"
    assert explanation.meta["params"]["explainer"]["name"] == "IntegratedGradients"
    assert set(explanation.data) == {
        "attributions",
        "X",
        "forward_kwargs",
        "predictions",
        "deltas",
        "target",
        "baselines",
    }
    assert explanation.X is noisy_data
    assert explanation.attributions[0].dtype == np.float32
    explanation.to_json()


def test_n_samples_is_the_deprecated_name_of_nt_samples(linear_ig, linear_data):
    with pytest.warns(DeprecationWarning, match="`nt_samples`"):
        old = NoiseTunnel(linear_ig, n_samples=3, stdevs=0.2, seed=5)
    new = NoiseTunnel(linear_ig, nt_samples=3, stdevs=0.2, seed=5)
    assert old.nt_samples == new.nt_samples == 3
    assert old.meta["params"]["nt_samples"] == 3 and "n_samples" not in old.meta["params"]
    np.testing.assert_array_equal(
        old.explain(linear_data, target=0).attributions[0],
        new.explain(linear_data, target=0).attributions[0],
    )
