"""Small image models for the path methods' tests (Guided IG, Blur IG), and how PAIR saliency
calls a Keras model: its ``call_model_function`` with the gradients of one target."""

import numpy as np
import tensorflow as tf
from compat import keras
from models import set_seeded_weights


def small_cnn(shape=(9, 7, 2), n_out=3, seed=5):
    """A seeded CNN on ``(H, W, C)`` images (not square, several channels, so that a mix-up of
    the axes shows): Conv2D(4, 3, tanh) -> Flatten -> Dense(n_out)."""
    inputs = keras.Input(shape)
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    hidden = keras.layers.Conv2D(3, 3, activation="softplus")(hidden)
    outputs = keras.layers.Dense(n_out)(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    set_seeded_weights(model, seed)
    return model


def images(n, shape=(9, 7, 2), seed=11):
    """``n`` images of floats in [0, 1)."""
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def pair_call_model(model):
    """PAIR saliency's ``call_model_function`` for ``model``: the gradients of the output
    ``call_model_args["target"]`` with respect to a batch of inputs."""
    import saliency.core

    def call(x, call_model_args=None, expected_keys=None):
        points = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
        with tf.GradientTape() as tape:
            tape.watch(points)
            outputs = model(points)[:, call_model_args["target"]]
        return {saliency.core.INPUT_OUTPUT_GRADIENTS: tape.gradient(outputs, points).numpy()}

    return call


def relative_l1(ours, reference):
    """``sum |ours - reference| / sum |reference|``."""
    return float(np.abs(ours - reference).sum() / np.abs(reference).sum())
