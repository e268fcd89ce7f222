"""ig_plugin against alibi and the bare cost of the same gradients, on the small CNN workload.

The floor: the same N * n_steps input gradients (same points, same batch size) from one compiled
``tf.function``, with no IG around it. Prints medians and the ratios ig_plugin / floor and
alibi / floor.

    python benchmarks/core_overhead.py [--repeats 5] [--batch 500]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients

from ig_plugin import IntegratedGradients
from ig_plugin._quadrature import quadrature


def small_cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def floor_seconds(
    model: keras.Model, X: np.ndarray, target: np.ndarray, n_steps: int, batch: int
) -> float:
    alphas, _ = quadrature("gausslegendre", n_steps)
    points = (alphas[:, None, None, None, None] * X[None]).reshape((-1, *X.shape[1:]))
    points = points.astype("float32")
    targets = np.tile(target, n_steps)

    @tf.function(reduce_retracing=True)
    def gradients(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.gather(model(x), t, batch_dims=1)
        return tape.gradient(y, x)

    def run() -> None:
        for first in range(0, len(points), batch):
            gradients(points[first : first + batch], targets[first : first + batch]).numpy()

    run()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    model = small_cnn()
    X = np.random.default_rng(0).random((args.samples, 28, 28, 1), dtype=np.float32)
    target = np.argmax(model(X), axis=1)
    explainer = IntegratedGradients(model, n_steps=args.steps, internal_batch_size=args.batch)
    alibi = AlibiIntegratedGradients(model, n_steps=args.steps, internal_batch_size=args.batch)
    explainer.explain(X, target=target)  # trace once
    ours, theirs, floor = [], [], []
    for _ in range(args.repeats):
        ours.append(seconds(lambda: explainer.explain(X, target=target)))
        theirs.append(seconds(lambda: alibi.explain(X, target=target)))
        floor.append(floor_seconds(model, X, target, args.steps, args.batch))
    ours_s, alibi_s, floor_s = (statistics.median(t) for t in (ours, theirs, floor))
    print(
        f"median of {args.repeats}: ig_plugin {ours_s:.3f} s, alibi {alibi_s:.3f} s, "
        f"floor {floor_s:.3f} s; ig_plugin/floor {ours_s / floor_s:.2f}, "
        f"alibi/floor {alibi_s / floor_s:.2f}, alibi/ig_plugin {alibi_s / ours_s:.2f}"
    )


if __name__ == "__main__":
    main()
