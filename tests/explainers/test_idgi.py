"""IDGI (Yang et al., 2023) on Integrated Gradients' straight line: exact completeness for any
number of points and any chunking, the closed form on a linear model, a numpy reference on the
same points, several targets, save and load, an explainer saved by 0.1.0, threads, and the
arguments refused before any TensorFlow work.

IDGI of the points ``x_0 .. x_m`` is ``sum_{i<m} g_i**2 / |g_i|**2 * (F(x_{i+1}) - F(x_i))``. A
linear model ``F = x @ w`` has the same gradient ``w`` everywhere, so the sum telescopes to
``w**2 / |w|**2 * (F(x) - F(x'))``.
"""

import alibi.saving
import numpy as np
import pytest
import tensorflow as tf
from concurrency import run_together
from models import multi_input_mlp, seeded_floats
from saved_explainers import SAVED_BY_0_1_0, build_model

from ig_plugin import IntegratedGradients


@pytest.mark.parametrize("n_steps", [1, 2, 7, 32])
@pytest.mark.parametrize("internal_batch_size", [1, 3, 100])
def test_attributions_add_up_to_the_output_change_for_any_steps_and_chunks(
    mlp, mlp_data, n_steps, internal_batch_size
):
    explainer = IntegratedGradients(
        mlp, n_steps=n_steps, internal_batch_size=internal_batch_size, idgi=True
    )
    explanation = explainer.explain(mlp_data, target=[0, 1, 2, 0, 1, 2], baselines=0.3)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-6)


@pytest.mark.parametrize("target", [0, 1])
def test_a_linear_model_has_the_closed_form(linear, linear_weights, linear_data, target):
    baseline = np.float32(0.5)
    explanation = IntegratedGradients(linear, n_steps=3, idgi=True).explain(
        linear_data, target=target, baselines=baseline
    )
    w = linear_weights[:, target]
    change = (linear_data - baseline) @ w
    expected = w**2 / np.sum(w**2) * change[:, np.newaxis]
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)


def numpy_idgi(model, x, baseline, target, n_steps):
    """The definition, point by point, with TensorFlow's gradients on the uniform points."""
    alphas = np.linspace(0.0, 1.0, n_steps + 1)
    points = tf.constant((baseline + alphas[:, None] * (x - baseline)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(points)
        outputs = model(points)[:, target]
    grads = tape.gradient(outputs, points).numpy().astype(np.float64)
    outputs = outputs.numpy().astype(np.float64)
    squares = grads[:-1] ** 2
    shares = squares / squares.sum(axis=1, keepdims=True)
    return (shares * np.diff(outputs)[:, None]).sum(axis=0)


def test_equals_the_definition_on_a_nonlinear_model(mlp, mlp_data):
    explanation = IntegratedGradients(mlp, n_steps=9, internal_batch_size=4, idgi=True).explain(
        mlp_data, target=2
    )
    for row, x in enumerate(mlp_data):
        expected = numpy_idgi(mlp, x, np.zeros_like(x), 2, 9)
        np.testing.assert_allclose(explanation.attributions[0][row], expected, rtol=1e-4, atol=1e-7)


def test_differs_from_integrated_gradients(mlp, mlp_data):
    idgi = IntegratedGradients(mlp, n_steps=20, idgi=True).explain(mlp_data, target=1)
    ig = IntegratedGradients(mlp, n_steps=20).explain(mlp_data, target=1)
    assert np.abs(idgi.attributions[0] - ig.attributions[0]).max() > 1e-3


def test_several_targets_equal_one_target_at_a_time(mlp, mlp_data):
    explainer = IntegratedGradients(mlp, n_steps=6, internal_batch_size=5, idgi=True)
    many = explainer.explain(mlp_data, targets=[2, 0])
    for k, target in enumerate([2, 0]):
        one = explainer.explain(mlp_data, target=target)
        np.testing.assert_allclose(many.attributions[0][:, k], one.attributions[0], atol=1e-6)
    np.testing.assert_allclose(many.deltas, 0.0, atol=1e-6)


def test_batch_invariance(mlp, mlp_data):
    explainer = IntegratedGradients(mlp, n_steps=5, internal_batch_size=7, idgi=True)
    together = explainer.explain(mlp_data, target=1).attributions[0]
    for row in range(len(mlp_data)):
        alone = explainer.explain(mlp_data[row : row + 1], target=1).attributions[0]
        np.testing.assert_allclose(alone[0], together[row], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("how", ["own load", "alibi.saving"])
def test_save_and_load_keep_idgi(mlp, mlp_data, tmp_path, how):
    explainer = IntegratedGradients(mlp, n_steps=5, idgi=True)
    before = explainer.explain(mlp_data, target=0).attributions[0]
    explainer.save(tmp_path)
    if how == "own load":
        loaded = IntegratedGradients.load(tmp_path, mlp)
    else:
        loaded = alibi.saving.load_explainer(tmp_path, predictor=mlp)
    assert loaded.idgi is True and loaded.meta["params"]["idgi"] is True
    np.testing.assert_allclose(loaded.explain(mlp_data, target=0).attributions[0], before)


def test_the_params_are_alibis_unless_idgi(mlp):
    assert "idgi" not in IntegratedGradients(mlp).meta["params"]
    assert IntegratedGradients(mlp, idgi=True).meta["params"]["idgi"] is True


def test_an_explainer_saved_by_0_1_0_has_idgi_false():
    loaded = IntegratedGradients.load(SAVED_BY_0_1_0 / "target_fn", build_model())
    assert loaded.idgi is False


def test_one_explainer_in_many_threads(mlp, mlp_data):
    explainer = IntegratedGradients(mlp, n_steps=8, internal_batch_size=5, idgi=True)
    alone = explainer.explain(mlp_data, target=1).attributions[0]
    results = []
    run_together(
        [lambda: results.append(explainer.explain(mlp_data, target=1).attributions[0])] * 4
    )
    assert len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, alone, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"idgi": 1}, TypeError, "`idgi` must be a bool"),
        ({"idgi": True, "n_steps": "auto"}, ValueError, "n_steps='auto'"),
        ({"idgi": True, "method": "riemann_left"}, ValueError, "method='riemann_left'"),
    ],
)
def test_bad_settings_are_refused(mlp, kwargs, error, match):
    with pytest.raises(error, match=match):
        IntegratedGradients(mlp, **kwargs)


def test_several_inputs_share_one_normalisation():
    """The squares are normalised over every feature of every input: the sums over both inputs
    add up to the output change, and neither input's sums do alone."""
    model = multi_input_mlp(seed=4)
    X = [seeded_floats((5, 3), seed=5), seeded_floats((5, 2), seed=6)]
    explanation = IntegratedGradients(model, n_steps=6, internal_batch_size=4, idgi=True).explain(
        X, target=0
    )
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-6)
    assert np.abs(explanation.attributions[1].sum(axis=1)).max() > 1e-3


def test_a_layer_path_adds_up_exactly(mlp, mlp_data):
    explainer = IntegratedGradients(
        mlp, layer=lambda model: model.layers[1], n_steps=5, internal_batch_size=3, idgi=True
    )
    explanation = explainer.explain(mlp_data, target=1, baselines=0.5)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-6)
