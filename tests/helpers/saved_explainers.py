"""Explainers saved by an earlier release, kept so that every later release is shown to load them.

``python tests/helpers/saved_explainers.py FOLDER`` builds the models below (fixed weights, from
code), explains :data:`X` with each explainer, and saves the explainers and what they gave into
``FOLDER/<kind>/``. The folders in ``tests/fixtures/saved_by_0.1.0/`` were written so by
ig_plugin at commit 44b3774 (0.1.0, before the package was laid out by role), on TensorFlow 2.21
with Keras 3. ``tests/explainers/test_saved_fixtures.py`` loads them with today's code.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np

#: Where the saves of 44b3774 are kept.
SAVED_BY_0_1_0 = Path(__file__).parents[1] / "fixtures" / "saved_by_0.1.0"

KINDS = ("target_fn", "layer_index", "layer_callable", "expected_gradients", "noise_tunnel")

X = np.random.default_rng(2024).normal(size=(4, 6)).astype("float32")


def build_model():
    """6 features -> Dense(5, tanh) -> Dense(4, tanh) -> Dense(3, softmax), fixed weights.

    Automatic layer names: a model built again in another process gets other ones.
    """
    import os

    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tf_keras as keras
    else:
        import keras

    inputs = keras.Input((6,))
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    h = keras.layers.Dense(4, activation="tanh")(h)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))
    rng = np.random.default_rng(7)
    model.set_weights([0.7 * rng.normal(size=w.shape) for w in model.get_weights()])
    return model


def background() -> np.ndarray:
    return np.random.default_rng(8).normal(size=(5, 6)).astype("float32")


def make_explainer(kind: str, model):
    from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel

    argmax = partial(np.argmax, axis=1)
    if kind == "target_fn":
        return IntegratedGradients(model, target_fn=argmax, n_steps=16)
    if kind == "layer_index":
        return IntegratedGradients(model, layer=model.layers[2], n_steps=16)
    if kind == "layer_callable":
        return IntegratedGradients(model, layer=lambda m: m.layers[2], n_steps=16)
    if kind == "expected_gradients":
        return ExpectedGradients(model, background(), n_samples=8, seed=3, target_fn=argmax)
    return NoiseTunnel(IntegratedGradients(model, n_steps=16), "smoothgrad", 3, stdevs=0.1, seed=4)


def explain(explainer, kind: str):
    """What each saved explainer explains (the same call before and after loading)."""
    return (
        explainer.explain(X)
        if kind in ("target_fn", "expected_gradients")
        else (explainer.explain(X, target=1))
    )


def main(folder: Path) -> None:
    model = build_model()
    for kind in KINDS:
        explainer = make_explainer(kind, model)
        explanation = explain(explainer, kind)
        explainer.save(folder / kind)
        np.savez(
            folder / kind / "explained.npz",
            attributions=explanation.attributions[0],
            deltas=explanation.deltas,
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
