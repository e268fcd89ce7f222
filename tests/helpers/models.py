"""Tiny Keras models with fixed weights, shared by the test modules.

Every builder sets its weights explicitly (from a seeded numpy generator or from the caller), so
results never depend on Keras' initialisers or on test order.
"""

import numpy as np
import tensorflow as tf
from compat import keras

METHODS = (
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
)


def set_seeded_weights(model, seed, scale=0.7):
    """Overwrite every weight of a built model with seeded normal values."""
    rng = np.random.default_rng(seed)
    model.set_weights([scale * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def seeded_floats(shape, seed, dtype="float32"):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# --- closed-form models -------------------------------------------------------------------------


def linear_model(weights):
    """``y = x @ weights`` (no bias); ``weights`` has shape ``(n_features, n_outputs)``."""
    weights = np.asarray(weights, dtype="float32")
    inputs = keras.Input((weights.shape[0],))
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([weights])
    return model


@keras.saving.register_keras_serializable(package="ig_plugin_tests")
class PowerSum(keras.layers.Layer):
    """``y = sum_j x_j ** power``, shape ``(N, 1)``: its IG has a closed form."""

    def __init__(self, power, **kwargs):
        super().__init__(**kwargs)
        self.power = power

    def call(self, x):
        return tf.reduce_sum(x**self.power, axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "power": self.power}


def power_sum_model(n_features, power):
    inputs = keras.Input((n_features,))
    return keras.Model(inputs, PowerSum(power)(inputs))


def linear_multi_input_model(weights_a, weights_b):
    """``y = a @ weights_a + b @ weights_b`` for two inputs."""
    weights = np.concatenate([weights_a, weights_b]).astype("float32")
    a = keras.Input((weights_a.shape[0],))
    b = keras.Input((weights_b.shape[0],))
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model([a, b], dense(keras.layers.Concatenate()([a, b])))
    dense.set_weights([weights])
    return model


def linear_rank3_model(weights, out_shape):
    """``y = reshape(x @ weights, out_shape)``: output of rank 3 with a known gradient."""
    weights = np.asarray(weights, dtype="float32")
    inputs = keras.Input((weights.shape[0],))
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model(inputs, keras.layers.Reshape(out_shape)(dense(inputs)))
    dense.set_weights([weights])
    return model


# --- smooth, non-linear models ------------------------------------------------------------------


def mlp_layers(n_hidden, n_out, activation):
    return [
        keras.layers.Dense(n_hidden, activation="tanh"),
        keras.layers.Dense(n_out, activation=activation),
    ]


def functional_mlp(n_in, n_hidden, n_out, seed, activation="softmax"):
    inputs = keras.Input((n_in,))
    x = inputs
    for layer in mlp_layers(n_hidden, n_out, activation):
        x = layer(x)
    return set_seeded_weights(keras.Model(inputs, x), seed)


def sequential_mlp(n_in, n_hidden, n_out, seed, activation="softmax"):
    model = keras.Sequential([keras.Input((n_in,)), *mlp_layers(n_hidden, n_out, activation)])
    return set_seeded_weights(model, seed)


class SubclassedMLP(keras.Model):
    def __init__(self, n_hidden, n_out, activation="softmax"):
        super().__init__()
        self.hidden, self.out = mlp_layers(n_hidden, n_out, activation)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed_mlp(n_in, n_hidden, n_out, seed, activation="softmax"):
    model = SubclassedMLP(n_hidden, n_out, activation)
    model(np.zeros((1, n_in), dtype="float32"))  # build the weights
    return set_seeded_weights(model, seed)


def binary_model(n_in, seed, squeeze=False):
    """A sigmoid classifier with output ``(N, 1)``, or ``(N,)`` when ``squeeze``."""
    inputs = keras.Input((n_in,))
    x = keras.layers.Dense(4, activation="tanh")(inputs)
    x = keras.layers.Dense(1, activation="sigmoid")(x)
    if squeeze:
        x = keras.layers.Reshape(())(x)
    return set_seeded_weights(keras.Model(inputs, x), seed)


def multi_input_mlp(seed, n_out=3):
    """Two inputs, ``(3,)`` and ``(2,)``, mixed by a tanh layer before a softmax."""
    a, b = keras.Input((3,)), keras.Input((2,))
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Dense(4, activation="tanh")(x)
    x = keras.layers.Dense(n_out, activation="softmax")(x)
    return set_seeded_weights(keras.Model([a, b], x), seed)


def rank3_mlp(n_in, out_shape, seed):
    """A smooth model with output of shape ``(N, *out_shape)``."""
    inputs = keras.Input((n_in,))
    x = keras.layers.Dense(4, activation="tanh")(inputs)
    x = keras.layers.Dense(int(np.prod(out_shape)), activation="sigmoid")(x)
    return set_seeded_weights(keras.Model(inputs, keras.layers.Reshape(out_shape)(x)), seed)


# --- subclassed models with special calls -------------------------------------------------------


class GatedLinear(keras.Model):
    """``y = (x * gate) @ w``: the ``gate`` keyword array must follow its sample."""

    def __init__(self, weights):
        super().__init__()
        self.dense = keras.layers.Dense(weights.shape[1], use_bias=False)
        self.dense.build((None, weights.shape[0]))
        self.dense.set_weights([np.asarray(weights, dtype="float32")])

    def call(self, x, gate):
        return self.dense(x * gate)


class CountingModel(keras.Model):
    """A linear model that counts how often its ``call`` runs (Python side, so traces count)."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.calls = 0
        self.dense = keras.layers.Dense(n_outputs, use_bias=False)
        self.dense.build((None, n_features))

    def call(self, x):
        self.calls += 1
        return self.dense(x)


class TwoOutputs(keras.Model):
    """A model that returns a list of two output tensors."""

    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(2)
        self.second = keras.layers.Dense(1)

    def call(self, x):
        return [self.first(x), self.second(x)]


class RowCounter(keras.layers.Layer):
    """The identity, recording how many rows each call of the compiled passes gets."""

    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.append = rows.append  # a list attribute would be copied by Keras' tracking

    def call(self, x):
        def record(rows):
            self.append(int(rows))
            return rows

        count = tf.numpy_function(record, [tf.shape(x)[0]], tf.int32, stateful=True)
        with tf.control_dependencies([count]):
            return tf.identity(x)


def bypass_model():
    """A tanh layer bypassed by a skip connection from the input to the head."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(3, activation="tanh", name="bypassed")(inputs)
    joined = keras.layers.Concatenate()([hidden, inputs])
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4, "tanh")(joined))
    return set_seeded_weights(keras.Model(inputs, outputs), seed=33)
