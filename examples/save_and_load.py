"""Fit an explainer once, save it beside the model, and load both where the model is served.

The explainer is saved in alibi's layout (``meta.dill`` and ``explainer.dill``) without the
model: no TensorFlow object is pickled, and the model passed at load time is the one explained.
The loaded pair must give the same attributions as the original one.

Writes ``iris_model.keras``, the folder ``iris_explainer/`` and ``save_and_load.png`` (the
served explanation of one flower) to ``examples/output`` or the folder given with ``--output``.

    python examples/save_and_load.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from alibi.saving import load_explainer
from sklearn.datasets import load_iris

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_feature_attributions


def train(X: np.ndarray, y: np.ndarray) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=80, batch_size=16, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    model_path, explainer_path = args.output / "iris_model.keras", args.output / "iris_explainer"

    iris = load_iris()
    X = ((iris.data - iris.data.mean(axis=0)) / iris.data.std(axis=0)).astype("float32")

    # --- where the model is trained: fit, explain, save both ---
    model = train(X, iris.target)
    explainer = IntegratedGradients(model, target_fn=partial(np.argmax, axis=1), n_steps=40)
    before = explainer.explain(X, baselines=0.0)
    model.save(model_path)
    explainer.save(explainer_path)  # the target_fn and the arguments, not the model

    # --- where the model is served (a fresh process in practice): load both, explain ---
    served_model = keras.saving.load_model(model_path)
    served = IntegratedGradients.load(explainer_path, served_model)
    after = served.explain(X, baselines=0.0)
    # MLServer's alibi runtime loads explainers through alibi; that reads the folder too.
    through_alibi = load_explainer(str(explainer_path), predictor=served_model)

    difference = np.abs(after.attributions[0] - before.attributions[0]).max()
    flower = 100
    fig = plot_feature_attributions(
        after,
        list(iris.feature_names),
        sample=flower,
        title=f"Flower {flower}, predicted {iris.target_names[after.target[flower]]} "
        "(loaded model and explainer)",
    )
    path = args.output / "save_and_load.png"
    fig.savefig(path, dpi=120)

    saved_bytes = sum(f.stat().st_size for f in explainer_path.iterdir())
    print(f"saved {model_path.name} and {explainer_path.name}/ ({saved_bytes} bytes)")
    print(f"loaded explainer: {type(served).__name__}, params {served.meta['params']}")
    kind = type(through_alibi)
    print(f"alibi.saving.load_explainer gives: {kind.__module__}.{kind.__qualname__}")
    print(f"max |attribution difference| before and after loading: {difference:.1e}")
    print(f"same targets: {bool((after.target == before.target).all())}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
