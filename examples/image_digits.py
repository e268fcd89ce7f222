"""Explain a small CNN on scikit-learn's bundled digits and save a picture of the attributions.

Trains in a few seconds on a CPU, needs no network, and writes
``examples/output/digits_integrated_gradients.png`` (or the folder given with ``--output``).

    python examples/image_digits.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_image_attributions


def train_cnn(images: np.ndarray, labels: np.ndarray) -> keras.Model:
    """A small CNN on 8x8 grey images, trained for a few seconds."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return model


def digit_images() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as (1797, 8, 8, 1) float32 images in [0, 1], their labels, and a seeded split
    into 1,500 training and 297 test indices."""
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    return images, digits.target, order[:1500], order[1500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    _, accuracy = model.evaluate(images[test], labels[test], verbose=0)

    # Explain the predicted class of six test images, starting each path from a black image.
    explainer = IntegratedGradients(model, target_fn=partial(np.argmax, axis=1), n_steps=50)
    X = images[test][:6]
    explanation = explainer.explain(X, baselines=0.0)
    predicted = explanation.target

    # Each image beside its attributions, all on one colour scale centred at zero.
    fig = plot_image_attributions(
        explanation,
        titles=[f"predicted {label}" for label in predicted],
        ncols=3,
        image_cmap="gray_r",
        clip_percentile=99.5,
    )
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "digits_integrated_gradients.png"
    fig.savefig(path, dpi=120)
    print(f"test accuracy: {accuracy:.3f}")
    print(f"predicted classes: {predicted.tolist()}, true: {labels[test][:6].tolist()}")
    print(f"largest |delta| (completeness gap): {np.abs(explanation.deltas).max():.2e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
