"""Guided Integrated Gradients: agreement with PAIR saliency on a CNN, Integrated Gradients where
Guided IG must reduce to it (a linear model, ``fraction=1``, an additively separable model in
the limit of many steps), IDGI's exact completeness and closed form, batch invariance, and bad
arguments refused before any TensorFlow work. Saving and loading, threads and NoiseTunnel, the
same for Blur IG, are in ``test_guided_and_blur.py``.

On a linear model the gradient is ``w`` at every point, so any path from x' to x gives
``w * (x - x')``. With ``fraction=1`` every feature moves together: the straight line, each step
from its left end, which is IG's left Riemann sum with the same steps.
"""

import numpy as np
import pytest
from image_models import pair_call_model, relative_l1
from models import multi_input_mlp, power_sum_model, seeded_floats

from ig_plugin import GuidedIntegratedGradients, IntegratedGradients


# PAIR 0.2.1 calls np.quantile with the `interpolation=` that NumPy 1.22 renamed.
@pytest.mark.filterwarnings("ignore:the `interpolation=` argument:DeprecationWarning")
@pytest.mark.parametrize(("fraction", "max_dist"), [(0.25, 0.02), (0.1, 0.2)])
def test_agrees_with_pair_saliency(cnn, cnn_images, fraction, max_dist):
    saliency = pytest.importorskip("saliency.core")
    explanation = GuidedIntegratedGradients(
        cnn, n_steps=30, fraction=fraction, max_dist=max_dist, internal_batch_size=2
    ).explain(cnn_images, target=1, baselines=0.2)
    call = pair_call_model(cnn)
    for row, image in enumerate(cnn_images):
        reference = saliency.GuidedIG().GetMask(
            image,
            call,
            {"target": 1},
            x_baseline=np.full_like(image, 0.2),
            x_steps=30,
            fraction=fraction,
            max_dist=max_dist,
        )
        assert relative_l1(explanation.attributions[0][row], reference) <= 1e-3


@pytest.mark.parametrize("target", [0, 1])
def test_a_linear_model_gets_w_times_x_minus_baseline(linear, linear_weights, linear_data, target):
    explanation = GuidedIntegratedGradients(linear, n_steps=7).explain(
        linear_data, target=target, baselines=-0.5
    )
    expected = linear_weights[:, target] * (linear_data + 0.5)
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)


def test_fraction_one_is_integrated_gradients_left_riemann(mlp, mlp_data):
    guided = GuidedIntegratedGradients(mlp, n_steps=12, fraction=1.0).explain(mlp_data, target=2)
    ig = IntegratedGradients(mlp, method="riemann_left", n_steps=12).explain(mlp_data, target=2)
    np.testing.assert_allclose(guided.attributions[0], ig.attributions[0], rtol=1e-4, atol=1e-6)


def test_an_additively_separable_model_gets_integrated_gradients():
    """``F = sum_j x_j**3``: each feature's gradient depends on itself only, so any monotone
    path gives ``x_j**3 - x'_j**3``, as IG does, up to the steps."""
    model = power_sum_model(6, 3)
    x = seeded_floats((4, 6), seed=8) + 1.0
    guided = GuidedIntegratedGradients(model, n_steps=400).explain(x)
    ig = IntegratedGradients(model).explain(x)
    np.testing.assert_allclose(ig.attributions[0], x**3, rtol=1e-4)
    np.testing.assert_allclose(guided.attributions[0], ig.attributions[0], rtol=2e-2, atol=1e-2)


@pytest.mark.parametrize("n_steps", [1, 5, 40])
def test_idgi_adds_up_exactly(cnn, cnn_images, n_steps):
    explanation = GuidedIntegratedGradients(cnn, n_steps=n_steps, idgi=True).explain(
        cnn_images, target=0
    )
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_idgi_on_a_linear_model_has_the_closed_form(linear, linear_weights, linear_data):
    explanation = GuidedIntegratedGradients(linear, n_steps=5, idgi=True).explain(
        linear_data, target=1
    )
    w = linear_weights[:, 1]
    expected = w**2 / np.sum(w**2) * (linear_data @ w)[:, np.newaxis]
    np.testing.assert_allclose(explanation.attributions[0], expected, rtol=1e-5, atol=1e-6)


def test_deltas_are_the_sum_minus_the_output_change(cnn, cnn_images):
    explanation = GuidedIntegratedGradients(cnn, n_steps=20).explain(cnn_images, target=2)
    outputs = cnn(cnn_images).numpy()[:, 2] - cnn(np.zeros_like(cnn_images)).numpy()[:, 2]
    sums = explanation.attributions[0].reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(explanation.deltas, sums - outputs, atol=1e-5)
    assert np.abs(explanation.deltas).max() < 0.1 * np.abs(outputs).max()


def test_a_sample_at_its_baseline_gets_zeros(mlp, mlp_data):
    explanation = GuidedIntegratedGradients(mlp, n_steps=5).explain(
        mlp_data, baselines=mlp_data[:1], target=0
    )
    assert not explanation.attributions[0][0].any()
    assert explanation.attributions[0][1:].any()


def test_batch_invariance(cnn, cnn_images):
    explainer = GuidedIntegratedGradients(cnn, n_steps=15, internal_batch_size=2)
    together = explainer.explain(cnn_images, target=[0, 1, 2]).attributions[0]
    for row in range(len(cnn_images)):
        alone = explainer.explain(cnn_images[row : row + 1], target=row).attributions[0]
        np.testing.assert_allclose(alone[0], together[row], rtol=1e-6, atol=1e-7)


def test_target_fn(cnn, cnn_images):
    explainer = GuidedIntegratedGradients(cnn, n_steps=5, target_fn=lambda p: np.argmax(p, axis=1))
    explanation = explainer.explain(cnn_images)
    predicted = np.argmax(cnn(cnn_images).numpy(), axis=1)
    np.testing.assert_array_equal(explanation.target, predicted)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"n_steps": 2.5}, TypeError, "n_steps"),
        ({"fraction": 0.0}, ValueError, "fraction"),
        ({"fraction": 1.5}, ValueError, "fraction"),
        ({"max_dist": -0.1}, ValueError, "max_dist"),
        ({"idgi": "yes"}, TypeError, "idgi"),
        ({"target_fn": 3}, TypeError, "target_fn"),
    ],
)
def test_bad_settings_are_refused(mlp, kwargs, error, match):
    with pytest.raises(error, match=match):
        GuidedIntegratedGradients(mlp, **kwargs)


def test_bad_inputs_are_refused_before_tensorflow_runs(counting):
    explainer = GuidedIntegratedGradients(multi_input_mlp(seed=3), n_steps=3)
    with pytest.raises(ValueError, match="one input"):
        explainer.explain([seeded_floats((2, 3), 1), seeded_floats((2, 2), 2)], target=0)
    explainer = GuidedIntegratedGradients(counting, n_steps=3)
    with pytest.raises(ValueError, match="baselines"):
        explainer.explain(seeded_floats((2, 3), 1), baselines=np.ones((3, 3)), target=0)
    with pytest.raises(ValueError, match="target"):
        explainer.explain(seeded_floats((2, 3), 1), target=[0, 1, 1])
    assert counting.calls == 0
