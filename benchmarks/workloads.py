"""The benchmark workloads: seeded untrained Keras models and generated inputs.

Timing needs no training: the cost of a gradient does not depend on the weights. Every builder
seeds Keras first, so a workload is the same model and the same data in every process (the memory
runs build it again in a fresh one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class Workload:
    """One model, its inputs and how it is explained.

    Attributes
    ----------
    key
        Short name used on the command line and in the JSON.
    title
        What the table calls it.
    build
        Builds the seeded model.
    make_inputs
        ``make_inputs(n_samples)``: the generated inputs X.
    n_samples
        N for the timing runs.
    layer
        For layer attributions: ``model -> layer`` (ig_plugin and alibi take the same layer).
    """

    key: str
    title: str
    build: Callable[[], keras.Model]
    make_inputs: Callable[[int], np.ndarray]
    n_samples: int
    layer: Callable[[keras.Model], Any] | None = None


def _images(shape: tuple[int, ...]) -> Callable[[int], np.ndarray]:
    def make(n_samples: int) -> np.ndarray:
        return np.random.default_rng(0).random((n_samples, *shape), dtype=np.float32)

    return make


def small_cnn() -> keras.Model:
    """Conv2D 16 3x3 relu, MaxPool, Dense 64 relu, Dense 10 softmax on 28x28x1 images."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def _residual_block(x: Any, channels: int) -> Any:
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(channels, 3, padding="same")(y)
    return keras.layers.Activation("relu")(keras.layers.Add()([x, y]))


def residual_cnn() -> keras.Model:
    """A small ResNet-like CNN on 32x32x3 images: strided stem, two residual stages, softmax."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    # A strided stem keeps the 100k-point memory runs at N = 2,000 within minutes.
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = _residual_block(x, 8)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = _residual_block(x, 16)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


VOCABULARY, SEQUENCE_LENGTH = 5000, 100


def text_model() -> keras.Model:
    """Token ids -> Embedding(5000, 32) -> Conv1D 32 relu -> global average -> Dense 2 softmax."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SEQUENCE_LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 32, name="embedding")(inputs)
    x = keras.layers.Conv1D(32, 5, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def token_ids(n_samples: int) -> np.ndarray:
    """Random token ids; 0 is kept for the baseline (all-zero ids), as a padding token would be."""
    rng = np.random.default_rng(0)
    return rng.integers(1, VOCABULARY, size=(n_samples, SEQUENCE_LENGTH)).astype(np.int32)


def tabular_mlp() -> keras.Model:
    """20 features -> Dense 64 relu -> Dense 64 relu -> Dense 2 softmax."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def tabular(n_samples: int) -> np.ndarray:
    """Standard-normal features, as standardised tabular data would be."""
    return np.random.default_rng(0).standard_normal((n_samples, 20), dtype=np.float32)


def _embedding(model: keras.Model) -> Any:
    return model.get_layer("embedding")


WORKLOADS: dict[str, Workload] = {
    workload.key: workload
    for workload in (
        Workload("cnn", "1. small CNN, 28x28x1", small_cnn, _images((28, 28, 1)), 100),
        Workload("resnet", "2. residual CNN, 32x32x3", residual_cnn, _images((32, 32, 3)), 32),
        Workload("text", "3. text, embedding layer", text_model, token_ids, 200, _embedding),
        Workload("mlp", "4. tabular MLP, 20 features", tabular_mlp, tabular, 20_000),
    )
}
