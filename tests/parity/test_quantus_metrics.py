"""Quantus 0.6.0 with ig_plugin's ``quantus_explain_func``, on Keras CNNs: Quantus' PixelFlipping
of a grey image equals ig_plugin's deletion curve, and Quantus takes the explain_func's
attributions of colour images (its channel order, one summed channel) as it takes the same array
given as ``a_batch``.

Runs where Quantus is installed (``make benchmark-metrics`` runs this file in its venv); skipped
elsewhere (Quantus needs numpy < 2 beside TensorFlow 2.21, and is not in CI).
"""

import warnings

import numpy as np
import pytest
from compat import keras
from models import seeded_floats, set_seeded_weights

from ig_plugin import IntegratedGradients
from ig_plugin.metrics import deletion, quantus_explain_func
from ig_plugin.metrics._quantus import quantus_layout

quantus = pytest.importorskip("quantus")

N, SIDE = 6, 8


def cnn(channels, seed):
    inputs = keras.Input((SIDE, SIDE, channels))
    x = keras.layers.Conv2D(4, 3, activation="tanh")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    return set_seeded_weights(model, seed)


def images(channels, seed):
    return np.abs(seeded_floats((N, SIDE, SIDE, channels), seed=seed))


def pixel_flipping(**kwargs):
    metric = quantus.PixelFlipping(
        features_in_step=SIDE, perturb_baseline=0.0, normalise=False, abs=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Quantus' notes on its parameters
        return np.asarray(metric(channel_first=False, **kwargs))


def test_pixel_flipping_equals_deletion():
    model, X = cnn(1, seed=110), images(1, seed=111)
    target = np.argmax(model(X).numpy(), axis=1)
    explain_func = quantus_explain_func(IntegratedGradients, n_steps=32)
    theirs = pixel_flipping(
        model=model, x_batch=X, y_batch=target, a_batch=None, explain_func=explain_func
    )
    attributions = IntegratedGradients(model, n_steps=32).explain(X, target=target)
    ours = deletion(model, X, attributions, steps=SIDE)
    # Quantus scores after each step of SIDE pixels; ig_plugin before the first one too.
    np.testing.assert_allclose(ours.scores[:, 1:], theirs, rtol=1e-5, atol=1e-6)
    assert np.ptp(theirs) > 1e-3


def test_colour_attributions_are_taken_as_quantus_takes_a_batch():
    model, X = cnn(3, seed=112), images(3, seed=113)
    target = np.argmax(model(X).numpy(), axis=1)
    explain_func = quantus_explain_func(IntegratedGradients, n_steps=32)
    by_function = pixel_flipping(
        model=model, x_batch=X, y_batch=target, a_batch=None, explain_func=explain_func
    )
    attributions = IntegratedGradients(model, n_steps=32).explain(X, target=target).attributions
    given = pixel_flipping(
        model=model, x_batch=X, y_batch=target, a_batch=quantus_layout(attributions[0])
    )
    np.testing.assert_allclose(by_function, given, rtol=1e-6)
