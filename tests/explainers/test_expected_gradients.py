"""Expected Gradients: closed forms, a numpy reference on the same draws, the distribution of the
draws (within 4 standard errors), completeness in expectation, repeatable seeded draws that no
batching changes, targets, several inputs, forward_kwargs, layers, and the explanation's form.

Expected Gradients of a sample x is the expectation over background rows b and alpha ~ U(0, 1)
of ``(x - b) * grad F(b + alpha (x - b))``. For a linear model ``F = x @ w`` that is
``w * (x - mean(b))``; for ``F = sum x**2`` it is ``x**2 - mean(b**2)`` per feature.
"""

import numpy as np
import pytest
from compat import keras
from concurrency import run_together
from models import (
    GatedLinear,
    bypass_model,
    power_sum_model,
    seeded_floats,
    set_seeded_weights,
)

from ig_plugin import ExpectedGradients, IntegratedGradients
from ig_plugin._engine import spans
from ig_plugin._integral.draws import sample_draws

BACKGROUND = seeded_floats((7, 3), seed=20)


# --- closed forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0, 1])
def test_deterministic_mode_on_a_linear_model_is_w_times_x_minus_the_background_mean(
    linear, linear_weights, linear_data, target
):
    explanation = ExpectedGradients(linear, BACKGROUND, n_samples=None, n_steps=2).explain(
        linear_data, target=target
    )
    expected = linear_weights[:, target] * (linear_data - BACKGROUND.mean(axis=0))
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)
    expected_value = (BACKGROUND @ linear_weights[:, target]).mean()
    np.testing.assert_allclose(explanation.expected_value, expected_value, rtol=1e-5)


def test_deterministic_mode_is_the_mean_of_integrated_gradients_over_the_rows(mlp, mlp_data):
    background = seeded_floats((3, 4), seed=21)
    explanation = ExpectedGradients(mlp, background, n_samples=None).explain(mlp_data, target=2)
    ig = IntegratedGradients(mlp)
    per_row = [
        ig.explain(mlp_data, baselines=row[np.newaxis], target=2).attributions[0]
        for row in background
    ]
    np.testing.assert_allclose(explanation.attributions[0], np.mean(per_row, axis=0), atol=1e-6)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_sampled_mode_equals_numpy_on_the_same_draws():
    """F = sum x**3: each draw contributes ``3 p**2 (x - b)`` at ``p = b + alpha (x - b)``."""
    model, seed, n_draws = power_sum_model(3, 3), 5, 40
    X = seeded_floats((4, 3), seed=22)
    explanation = ExpectedGradients(model, BACKGROUND, n_samples=n_draws, seed=seed).explain(X)
    for i, x in enumerate(X.astype(np.float64)):
        rows, alphas = sample_draws(seed, i, n_draws, len(BACKGROUND))
        b = BACKGROUND[rows].astype(np.float64)
        points = b + alphas[:, np.newaxis] * (x - b)
        expected = (3 * points**2 * (x - b)).mean(axis=0)
        np.testing.assert_allclose(explanation.attributions[0][i], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("power", [1, 2])
def test_sampled_mode_is_within_four_standard_errors_of_the_expectation(power):
    """Rows uniform over the background and alpha uniform on [0, 1]: for F = sum x**power the
    attribution estimates ``x**power - mean(b**power)``; the standard error of each feature is
    found from a large numpy sample of single draws."""
    model, n_draws = power_sum_model(3, power), 400
    X = seeded_floats((5, 3), seed=23)
    explanation = ExpectedGradients(model, BACKGROUND, n_samples=n_draws, seed=1).explain(X)
    rng = np.random.default_rng(99)
    for i, x in enumerate(X.astype(np.float64)):
        b = BACKGROUND[rng.integers(len(BACKGROUND), size=100_000)].astype(np.float64)
        points = b + rng.random((len(b), 1)) * (x - b)
        one_draw = power * points ** (power - 1) * (x - b)
        standard_error = one_draw.std(axis=0) / np.sqrt(n_draws)
        expected = x**power - (BACKGROUND.astype(np.float64) ** power).mean(axis=0)
        assert np.all(np.abs(explanation.attributions[0][i] - expected) <= 4 * standard_error)


def test_completeness_holds_in_expectation_and_tightens_with_more_draws(mlp):
    """Each sample's delta has mean zero and a spread falling as 1 / sqrt(n_samples)."""
    X, background = seeded_floats((64, 4), seed=24), seeded_floats((10, 4), seed=25)
    spreads = []
    for n_draws in (16, 1024):
        deltas = (
            ExpectedGradients(mlp, background, n_samples=n_draws, seed=2, internal_batch_size=4096)
            .explain(X, target=1)
            .deltas
        )
        assert abs(deltas.mean()) <= 4 * deltas.std() / np.sqrt(len(deltas))
        spreads.append(np.sqrt(np.mean(deltas**2)))
    # 64 times the draws: the spread should fall about 8-fold.
    assert spreads[1] < spreads[0] / 4


# --- draws --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp_background():
    return seeded_floats((5, 4), seed=26)


def test_seeded_runs_repeat_exactly_and_seeds_differ(mlp, mlp_data, mlp_background):
    explainer = ExpectedGradients(mlp, mlp_background, n_samples=30, seed=3)
    first = explainer.explain(mlp_data, target=0).attributions[0]
    np.testing.assert_array_equal(explainer.explain(mlp_data, target=0).attributions[0], first)
    other = ExpectedGradients(mlp, mlp_background, n_samples=30, seed=4)
    assert not np.allclose(other.explain(mlp_data, target=0).attributions[0], first)
    unseeded = ExpectedGradients(mlp, mlp_background, n_samples=30)
    one, two = (unseeded.explain(mlp_data, target=0).attributions[0] for _ in range(2))
    assert not np.allclose(one, two)


@pytest.mark.parametrize("batch_size", [1, 7, 5000])
def test_batch_size_and_spans_change_no_draw(
    mlp, mlp_data, mlp_background, batch_size, monkeypatch
):
    reference = ExpectedGradients(mlp, mlp_background, n_samples=25, seed=6).explain(
        mlp_data, target=1
    )
    # Spans of two samples (50 pairs): the plan is cut into many compiled calls.
    monkeypatch.setattr(spans, "SPAN_PAIRS", 50)
    explanation = ExpectedGradients(
        mlp, mlp_background, n_samples=25, seed=6, internal_batch_size=batch_size
    ).explain(mlp_data, target=1)
    np.testing.assert_allclose(
        explanation.attributions[0], reference.attributions[0], rtol=1e-5, atol=1e-7
    )


def test_a_sample_gets_the_same_draws_whatever_follows_it(mlp, mlp_data, mlp_background):
    explainer = ExpectedGradients(mlp, mlp_background, n_samples=20, seed=8)
    whole = explainer.explain(mlp_data, target=2).attributions[0]
    head = explainer.explain(mlp_data[:2], target=2).attributions[0]
    np.testing.assert_allclose(head, whole[:2], rtol=1e-6, atol=1e-7)


def test_several_targets_equal_separate_calls(mlp, mlp_data, mlp_background):
    explainer = ExpectedGradients(mlp, mlp_background, n_samples=20, seed=9)
    together = explainer.explain(mlp_data, targets=[0, 2])
    assert together.attributions[0].shape == (len(mlp_data), 2, 4)
    assert together.deltas.shape == (len(mlp_data), 2)
    for k, target in enumerate([0, 2]):
        alone = explainer.explain(mlp_data, target=target)
        np.testing.assert_allclose(
            together.attributions[0][:, k], alone.attributions[0], rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(together.deltas[:, k], alone.deltas, atol=1e-6)


# --- inputs, forward_kwargs, layers -------------------------------------------------------------


def named_linear(w_a, w_b):
    """``y = a @ w_a + b @ w_b`` with inputs named ``a`` and ``b``."""
    a, b = keras.Input((len(w_a),), name="a"), keras.Input((len(w_b),), name="b")
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model([a, b], dense(keras.layers.Concatenate()([a, b])))
    dense.set_weights([np.concatenate([w_a, w_b]).astype("float32")])
    return model


def test_several_inputs_as_a_list_and_as_a_dict():
    w_a, w_b = np.array([[1.0], [-2.0], [0.5]]), np.array([[3.0], [-1.0]])
    model = named_linear(w_a, w_b)
    background = [seeded_floats((4, 3), seed=27), seeded_floats((4, 2), seed=28)]
    X = [seeded_floats((3, 3), seed=29), seeded_floats((3, 2), seed=30)]
    expected = [
        w[:, 0] * (x - b.mean(axis=0)) for w, x, b in zip((w_a, w_b), X, background, strict=True)
    ]
    as_list = ExpectedGradients(model, background, n_samples=None, n_steps=1).explain(X)
    # Dicts in another order than the model's: attributions still come in the model's order.
    as_dict = ExpectedGradients(
        model, {"b": background[1], "a": background[0]}, n_samples=None, n_steps=1
    ).explain({"b": X[1], "a": X[0]})
    for explanation in (as_list, as_dict):
        for ours, theirs in zip(explanation.attributions, expected, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_integer_X_and_background_are_explained_as_floats(linear, linear_data):
    ints = np.round(linear_data * 3).astype("int32")
    background = np.round(BACKGROUND * 3).astype("int64")
    from_ints = ExpectedGradients(linear, background, n_samples=10, seed=1).explain(ints, target=0)
    from_floats = ExpectedGradients(
        linear, background.astype("float32"), n_samples=10, seed=1
    ).explain(ints.astype("float32"), target=0)
    assert from_ints.attributions[0].dtype == np.float32
    np.testing.assert_array_equal(from_ints.attributions[0], from_floats.attributions[0])


def test_per_sample_forward_kwargs_follow_their_sample_also_at_the_background():
    """``y = (x * gate) @ w``: the attribution is ``gate * w * (x - mean(b))`` and the reference
    output of each sample is its own ``mean over b of F(b; gate)``."""
    w = np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    X, gate = seeded_floats((4, 3), seed=31), seeded_floats((4, 3), seed=32)
    explanation = ExpectedGradients(GatedLinear(w), BACKGROUND, n_samples=None, n_steps=1).explain(
        X, forward_kwargs={"gate": gate}
    )
    expected = gate * w[:, 0] * (X - BACKGROUND.mean(axis=0))
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_layer_attributions_are_the_mean_of_layer_integrated_gradients():
    """The paths run in the layer's space from its value on each row; the skip branch sees x,
    so the deltas are complete only with the reference run the same way."""
    model = bypass_model()
    layer = model.get_layer("bypassed")
    X = seeded_floats((4, 3), seed=34)
    explanation = ExpectedGradients(model, BACKGROUND[:3], n_samples=None, layer=layer).explain(
        X, target=1
    )
    ig = IntegratedGradients(model, layer=layer)
    per_row = [
        ig.explain(X, baselines=row[np.newaxis], target=1).attributions[0] for row in BACKGROUND[:3]
    ]
    np.testing.assert_allclose(explanation.attributions[0], np.mean(per_row, axis=0), atol=1e-6)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_token_ids_through_an_embedding_layer():
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(12, 4, name="embedding")(inputs)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    model = set_seeded_weights(
        keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled)), seed=35
    )
    rng = np.random.default_rng(36)
    X, background = rng.integers(1, 12, (3, 5)).astype("int32"), np.zeros((2, 5), "int32")
    explanation = ExpectedGradients(
        model, background, n_samples=None, layer=lambda m: m.get_layer("embedding")
    ).explain(X, target=0)
    assert explanation.attributions[0].shape == (3, 5, 4)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


# --- the explanation --------------------------------------------------------------------------


def test_explanation_holds_alibis_keys_in_the_inputs_dtype(mlp, mlp_data, mlp_background):
    explanation = ExpectedGradients(mlp, mlp_background, n_samples=8, seed=0).explain(
        mlp_data.astype("float64"), target=1
    )
    assert explanation.meta["name"] == "ExpectedGradients"
    assert explanation.meta["params"]["n_samples"] == 8
    assert explanation.meta["params"]["background_rows"] == 5
    assert set(explanation.data) == {
        "attributions",
        "X",
        "forward_kwargs",
        "predictions",
        "deltas",
        "target",
        "expected_value",
    }
    assert isinstance(explanation.attributions, list)
    assert explanation.attributions[0].dtype == np.float64
    np.testing.assert_allclose(explanation.predictions, mlp(mlp_data).numpy(), rtol=1e-5)
    f_x = explanation.predictions[:, 1].astype(np.float64)
    sums = explanation.attributions[0].sum(axis=1)
    np.testing.assert_allclose(explanation.deltas, sums - (f_x - explanation.expected_value))
    explanation.to_json()


def test_progress_bar_counts_every_gradient(mlp, mlp_data, mlp_background, capsys):
    ExpectedGradients(mlp, mlp_background, n_samples=10, seed=0, internal_batch_size=7).explain(
        mlp_data, target=0, progress_bar=True
    )
    assert "60/60" in capsys.readouterr().err


def test_one_explainer_in_many_threads(mlp, mlp_data, mlp_background):
    explainer = ExpectedGradients(mlp, mlp_background, n_samples=15, seed=10)
    alone = explainer.explain(mlp_data, target=1).attributions[0]
    results = []
    run_together(
        [lambda: results.append(explainer.explain(mlp_data, target=1).attributions[0])] * 4
    )
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, alone, rtol=1e-6, atol=1e-7)


def test_the_caller_background_is_copied(mlp, mlp_data):
    background = seeded_floats((3, 4), seed=37)
    explainer = ExpectedGradients(mlp, background, n_samples=None, n_steps=4)
    before = explainer.explain(mlp_data, target=0).attributions[0]
    background[:] = 0.0
    np.testing.assert_array_equal(explainer.explain(mlp_data, target=0).attributions[0], before)
