"""``quantus_explain_func``: Quantus' calling convention on ig_plugin's explainers, without Quantus
(its metrics run on it in tests/parity/test_quantus_metrics.py, where Quantus is installed)."""

import numpy as np
import pytest
from compat import keras
from models import functional_mlp, seeded_floats, set_seeded_weights

from ig_plugin import IntegratedGradients, NoiseTunnel
from ig_plugin.metrics import quantus_explain_func

IMAGES = seeded_floats((3, 5, 6, 2), seed=95)  # channel-last, as Keras (and Quantus) give them
LABELS = np.array([0, 2, 1])


@pytest.fixture(scope="module")
def cnn():
    inputs = keras.Input((5, 6, 2))
    x = keras.layers.Conv2D(3, 2, activation="tanh")(inputs)
    x = keras.layers.Flatten()(x)
    return set_seeded_weights(keras.Model(inputs, keras.layers.Dense(3)(x)), seed=96)


def test_images_get_quantus_layout_one_channel_first(cnn):
    """Quantus takes an explain_func's attributions of channel-last images channel-first, with
    one channel: each pixel's signed attributions summed."""
    explain_func = quantus_explain_func(IntegratedGradients, n_steps=16)
    given = explain_func(model=cnn, inputs=IMAGES, targets=LABELS)
    expected = IntegratedGradients(cnn, n_steps=16).explain(IMAGES, target=LABELS)
    assert given.shape == (3, 1, 5, 6)
    assert given.dtype == np.float64
    np.testing.assert_allclose(given[:, 0], expected.attributions[0].sum(-1), rtol=1e-6)
    assert (given < 0).any() and (given > 0).any()


def test_the_explainer_is_built_once_per_model_and_keywords_go_to_explain():
    models = [functional_mlp(4, 5, 3, seed=97), functional_mlp(4, 5, 3, seed=98)]
    built = []

    def build(model, **init_kwargs):
        built.append(model)
        return NoiseTunnel(IntegratedGradients(model, **init_kwargs), nt_samples=2, seed=0)

    explain_func = quantus_explain_func(build, n_steps=8)
    rows = seeded_floats((4, 4), seed=99)
    labels = np.array([0.0, 1.0, 2.0, 1.0])  # Quantus may hold labels as floats
    for model in (models[0], models[0], models[1], models[1]):
        explain_func(model, rows, labels, device="cpu", baselines=0.5)
    assert built == models
    expected = NoiseTunnel(IntegratedGradients(models[1], n_steps=8), nt_samples=2, seed=0)
    given = explain_func(models[1], rows, labels, baselines=0.5)
    want = expected.explain(rows, target=labels.astype(int), baselines=0.5).attributions[0]
    np.testing.assert_allclose(given, want, rtol=1e-6)  # tables come back as they are


def test_an_argument_explain_does_not_take_is_refused(cnn):
    explain_func = quantus_explain_func(IntegratedGradients, n_steps=4)
    with pytest.raises(TypeError, match="channel_first"):
        explain_func(cnn, IMAGES, LABELS, channel_first=False)
