"""Explain a model with two inputs: X and baselines are lists with one entry per input.

scikit-learn's wine data is split into two groups of measurements, as if they came from two
instruments: ten chemical ones and three colour ones, each fed to its own input and branch of
the network. The explanation has one attribution array per input, and together they satisfy
completeness: the sum over both inputs is ``F(x) - F(baseline)``.

Writes ``multi_input_wine.png``, one wine's attributions from both inputs on one axis, to
``examples/output`` or the folder given with ``--output``.

    python examples/multi_input_wine.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_feature_attributions

COLOUR = ["color_intensity", "hue", "od280/od315_of_diluted_wines"]


def train(chemistry: np.ndarray, colour: np.ndarray, y: np.ndarray) -> keras.Model:
    """One small branch per input, joined before a softmax over the three cultivars."""
    keras.utils.set_random_seed(0)
    chemistry_in = keras.Input((chemistry.shape[1],), name="chemistry")
    colour_in = keras.Input((colour.shape[1],), name="colour")
    joined = keras.layers.Concatenate()(
        [
            keras.layers.Dense(8, activation="relu")(chemistry_in),
            keras.layers.Dense(4, activation="relu")(colour_in),
        ]
    )
    outputs = keras.layers.Dense(3, activation="softmax")(joined)
    model = keras.Model([chemistry_in, colour_in], outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit([chemistry, colour], y, epochs=60, batch_size=16, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    data = load_wine()
    names = list(data.feature_names)
    is_colour = np.isin(names, COLOUR)
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )
    scaler = StandardScaler().fit(X_train)
    X_train = scaler.transform(X_train).astype("float32")
    X_test = scaler.transform(X_test).astype("float32")
    train_inputs = [X_train[:, ~is_colour], X_train[:, is_colour]]
    test_inputs = [X_test[:, ~is_colour], X_test[:, is_colour]]
    model = train(*train_inputs, y_train)
    _, accuracy = model.evaluate(test_inputs, y_test, verbose=0)

    # One baseline per input, in the order of the model's inputs: here the average training wine
    # (leading dimension 1, so it is shared by every sample).
    baselines = [x.mean(axis=0, keepdims=True) for x in train_inputs]
    explainer = IntegratedGradients(model, target_fn=partial(np.argmax, axis=1), n_steps=50)
    explanation = explainer.explain(test_inputs, baselines=baselines)
    chemistry_attr, colour_attr = explanation.attributions  # (N, 10) and (N, 3)

    # One wine, both inputs on one axis: concatenate the attributions and prefix the names.
    wine = 0
    fig = plot_feature_attributions(
        np.concatenate([chemistry_attr[wine], colour_attr[wine]]),
        [f"chemistry: {n}" for n in np.array(names)[~is_colour]]
        + [f"colour: {n}" for n in np.array(names)[is_colour]],
        title=f"Test wine {wine}, predicted cultivar {explanation.target[wine]}: "
        "attributions from both inputs",
    )
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "multi_input_wine.png"
    fig.savefig(path, dpi=120)

    share = np.abs(colour_attr).sum() / (np.abs(chemistry_attr).sum() + np.abs(colour_attr).sum())
    print(f"test accuracy: {accuracy:.3f}")
    print(
        f"wine {wine}: chemistry input {chemistry_attr[wine].sum():+.3f}, colour input "
        f"{colour_attr[wine].sum():+.3f}, delta {explanation.deltas[wine]:+.1e}"
    )
    print(f"share of |attribution| from the 3 colour features, all test wines: {share:.0%}")
    print(f"largest |delta| (completeness gap): {np.abs(explanation.deltas).max():.2e}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
