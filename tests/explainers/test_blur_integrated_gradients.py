"""Blur Integrated Gradients: the TensorFlow blur against ``scipy.ndimage.gaussian_filter``,
the closed forms on a linear model, agreement with PAIR saliency on a CNN, IDGI's exact
completeness, batch invariance, and bad arguments refused before any TensorFlow work. Saving and
loading, threads and NoiseTunnel, the same for Guided IG, are in ``test_guided_and_blur.py``.

On a linear model ``F = sum w * x`` every gradient is ``w``, so Blur IG is
``w * sum_i -(s_{i+1} - s_i) * (blur(x, s_i + grad_step) - blur(x, s_i)) / grad_step``
(PAIR's finite-difference direction), which tends to ``w * (x - blur(x, max_sigma))``; IDGI on
the same points is ``w**2 / |w|**2 * (F(x) - F(blur(x, max_sigma)))``.
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from compat import keras
from image_models import images, pair_call_model, relative_l1, small_cnn
from scipy import ndimage

from ig_plugin import BlurIntegratedGradients
from ig_plugin._engine.blur import gaussian_blur

SHAPE = (9, 7, 2)


def scipy_blur(image, sigma):
    """PAIR's blur: none at sigma 0, else scipy's, over height and width."""
    if sigma == 0:
        return image
    return ndimage.gaussian_filter(image, [sigma, sigma, 0], mode="constant")


@pytest.fixture(scope="module")
def cnn():
    return small_cnn(SHAPE)


@pytest.fixture(scope="module")
def cnn_images():
    return images(3, SHAPE)


@pytest.fixture(scope="module")
def linear_image_model():
    weights = np.random.default_rng(4).normal(size=(int(np.prod(SHAPE)), 1))
    inputs = keras.Input(SHAPE)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.astype("float32")])
    return model, weights[:, 0].reshape(SHAPE)


@pytest.mark.parametrize("sigma", [0.0, 0.01, 0.2, 0.9, 1.3, 3.7, 50.0])
def test_the_blur_is_scipys(sigma):
    image = images(1, (12, 5, 3), seed=2)[0].astype(np.float64)
    ours = gaussian_blur(tf.constant(image[np.newaxis]), tf.constant([sigma], tf.float64))
    np.testing.assert_allclose(ours.numpy()[0], scipy_blur(image, sigma), rtol=0, atol=1e-14)


def pair_linear_form(x, weights, sigmas, grad_step):
    """Blur IG of a linear model, from scipy's blur in float64."""
    x = x.astype(np.float64)
    total = np.zeros_like(x)
    for low, high in itertools.pairwise(sigmas):
        direction = (scipy_blur(x, low + grad_step) - scipy_blur(x, low)) / grad_step
        total -= (high - low) * direction
    return weights * total


@pytest.mark.parametrize("sqrt", [False, True])
def test_a_linear_model_has_the_closed_form(linear_image_model, cnn_images, sqrt):
    model, weights = linear_image_model
    explanation = BlurIntegratedGradients(
        model, max_sigma=4.0, n_steps=12, grad_step=0.05, sqrt=sqrt, internal_batch_size=5
    ).explain(cnn_images)
    sigmas = np.arange(13) * 4.0 / 12
    sigmas = np.sqrt(sigmas) if sqrt else sigmas
    for row, x in enumerate(cnn_images):
        expected = pair_linear_form(x, weights, sigmas, 0.05)
        np.testing.assert_allclose(explanation.attributions[0][row], expected, atol=2e-5)


def test_a_linear_model_tends_to_w_times_x_minus_its_blur(linear_image_model, cnn_images):
    model, weights = linear_image_model
    explanation = BlurIntegratedGradients(
        model, max_sigma=3.0, n_steps=300, grad_step=1e-3
    ).explain(cnn_images)
    for row, x in enumerate(cnn_images):
        expected = weights * (x - scipy_blur(x.astype(np.float64), 3.0))
        assert relative_l1(explanation.attributions[0][row], expected) < 0.05


def test_idgi_on_a_linear_model_has_the_closed_form(linear_image_model, cnn_images):
    model, weights = linear_image_model
    explanation = BlurIntegratedGradients(model, max_sigma=6.0, n_steps=7, idgi=True).explain(
        cnn_images
    )
    for row, x in enumerate(cnn_images):
        change = np.sum(weights * (x - scipy_blur(x.astype(np.float64), 6.0)))
        expected = weights**2 / np.sum(weights**2) * change
        np.testing.assert_allclose(explanation.attributions[0][row], expected, atol=1e-6)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_sigma": 5.0, "n_steps": 20},
        {"max_sigma": 50.0, "n_steps": 30, "sqrt": True, "grad_step": 0.05},
    ],
)
def test_agrees_with_pair_saliency(cnn, cnn_images, settings):
    saliency = pytest.importorskip("saliency.core")
    explanation = BlurIntegratedGradients(cnn, internal_batch_size=7, **settings).explain(
        cnn_images, target=1
    )
    for row, image in enumerate(cnn_images):
        # PAIR's batch_size=1: with more, 0.2.1 scales a batch by its last step's d_sigma.
        reference = saliency.BlurIG().GetMask(
            image,
            pair_call_model(cnn),
            {"target": 1},
            max_sigma=settings["max_sigma"],
            steps=settings["n_steps"],
            grad_step=settings.get("grad_step", 0.01),
            sqrt=settings.get("sqrt", False),
        )
        assert relative_l1(explanation.attributions[0][row], reference) <= 1e-3


@pytest.mark.parametrize("sqrt", [False, True])
def test_idgi_adds_up_exactly(cnn, cnn_images, sqrt):
    explanation = BlurIntegratedGradients(
        cnn, max_sigma=9.0, n_steps=11, sqrt=sqrt, internal_batch_size=4, idgi=True
    ).explain(cnn_images, target=2)
    np.testing.assert_allclose(explanation.deltas, 0.0, atol=1e-5)


def test_deltas_and_baselines(cnn, cnn_images):
    explanation = BlurIntegratedGradients(cnn, max_sigma=3.0, n_steps=40).explain(
        cnn_images, target=0
    )
    blurred = np.stack([scipy_blur(x.astype(np.float64), 3.0) for x in cnn_images])
    np.testing.assert_allclose(explanation.data["baselines"], blurred, atol=1e-6)
    changes = cnn(cnn_images).numpy()[:, 0] - cnn(blurred.astype("float32")).numpy()[:, 0]
    sums = explanation.attributions[0].reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(explanation.deltas, sums - changes, atol=1e-5)


def test_batch_invariance(cnn, cnn_images):
    explainer = BlurIntegratedGradients(cnn, max_sigma=4.0, n_steps=9, internal_batch_size=4)
    together = explainer.explain(cnn_images, target=[0, 1, 2]).attributions[0]
    for row in range(len(cnn_images)):
        alone = explainer.explain(cnn_images[row : row + 1], target=row).attributions[0]
        np.testing.assert_allclose(alone[0], together[row], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_sigma": 0.0}, ValueError, "max_sigma"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"grad_step": -0.01}, ValueError, "grad_step"),
        ({"sqrt": 1}, TypeError, "sqrt"),
        ({"idgi": None}, TypeError, "idgi"),
        ({"internal_batch_size": 0}, ValueError, "internal_batch_size"),
    ],
)
def test_bad_settings_are_refused(cnn, kwargs, error, match):
    with pytest.raises(error, match=match):
        BlurIntegratedGradients(cnn, **kwargs)


def test_inputs_that_are_not_images_are_refused_before_tensorflow_runs(counting):
    explainer = BlurIntegratedGradients(counting)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        explainer.explain(np.ones((2, 3), dtype="float32"), target=0)
    assert counting.calls == 0
