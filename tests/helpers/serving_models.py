"""A model repository for the serving tests: seeded Keras models, their explainers and
model-settings.json files, and the in-process explainers that served results must equal.

- ``classifier``: 6 features -> softmax over 3 classes; a saved explainer (``uri``), .keras file.
- ``regression``: 4 features -> one linear output; ``init_parameters``, .h5 file kept outside
  the repository; small request limits (:data:`REGRESSION_LIMITS`).
- ``two-inputs``: inputs ``chemistry`` (5) and ``colour`` (3) -> softmax over 3; saved explainer
  whose small ``internal_batch_size`` splits paths across gradient batches.
- ``text``: 10 token ids -> Embedding -> mean -> softmax over 2; a saved layer explainer
  (attributions to the embedding's output).
- ``auto-steps``: the classifier with ``n_steps="auto"``.
- ``expected-gradients``: the classifier with a seeded ExpectedGradients (8 background rows).
- ``noise-tunnel``: the classifier with a seeded SmoothGrad over IntegratedGradients.
- ``xrai``: 8 x 8 x 1 images -> conv -> softmax over 3; XRAI over IntegratedGradients with the
  image's four quadrants as its segments.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from compat import keras
from models import set_seeded_weights

from ig_plugin import XRAI, ExpectedGradients, IntegratedGradients, NoiseTunnel

VOCABULARY, LENGTH = 50, 10
RUNTIME = "ig_plugin.serving.IntegratedGradientsRuntime"

#: The regression model takes at most 6 samples and 20 values (5 samples of 4) per request.
REGRESSION_LIMITS = {"max_request_samples": 6, "max_request_values": 20}


def classifier() -> keras.Model:
    inputs = keras.Input((6,), name="features")
    h = keras.layers.Dense(5, activation="tanh")(inputs)
    return set_seeded_weights(
        keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h)), seed=11
    )


def regression() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(1)]
    )
    return set_seeded_weights(model, seed=12)


def two_inputs() -> keras.Model:
    chemistry, colour = keras.Input((5,), name="chemistry"), keras.Input((3,), name="colour")
    h = keras.layers.Dense(4, activation="tanh")(keras.layers.Concatenate()([chemistry, colour]))
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    return set_seeded_weights(keras.Model([chemistry, colour], outputs), seed=13)


def text() -> keras.Model:
    ids = keras.Input((LENGTH,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(VOCABULARY, 4, name="embedding")(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return set_seeded_weights(keras.Model(ids, outputs), seed=14, scale=1.5)


def image_classifier() -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, activation="tanh")(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    return set_seeded_weights(keras.Model(inputs, outputs), seed=15)


def quadrants(size: int = 8) -> np.ndarray:
    """Four boolean masks ``(4, size, size)``: the image's quadrants."""
    masks = np.zeros((4, size, size), dtype=bool)
    half = size // 2
    masks[0, :half, :half], masks[1, :half, half:] = True, True
    masks[2, half:, :half], masks[3, half:, half:] = True, True
    return masks


@dataclass
class ServedModel:
    """One model of the repository, and how the test process builds the same explainer."""

    name: str
    model_file: Path
    explainer_dir: Path | None = None
    init_parameters: dict[str, Any] = field(default_factory=dict)
    explainer_class: type = IntegratedGradients
    extra: dict[str, Any] = field(default_factory=dict)

    def reference(self) -> Any:
        """The explainer the server runs, built in this process from the same files."""
        model = keras.models.load_model(self.model_file, compile=False)
        if self.explainer_dir is not None:
            return self.explainer_class.load(self.explainer_dir, model)
        return IntegratedGradients(model, **self.init_parameters)

    def settings(self, folder: Path) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "extra": {"model_uri": os.path.relpath(self.model_file, folder), **self.extra}
        }
        if folder not in self.model_file.parents:
            parameters["extra"]["allow_paths_outside_folder"] = True
        if self.explainer_dir is not None:
            parameters["uri"] = os.path.relpath(self.explainer_dir, folder)
        else:
            parameters["extra"]["init_parameters"] = self.init_parameters
        return {"name": self.name, "implementation": RUNTIME, "parameters": parameters}


def write_repository(root: Path) -> dict[str, ServedModel]:
    """Save the models, their explainers and settings in ``root/models/<name>``, except the
    regression model's file, kept in ``root/artifacts`` (outside the repository, which its
    settings allow); return them by name. ``root/models`` is the repository to serve."""
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True)
    served = {}

    def add(name, model, suffix, explainer=None, outside=False, extra=None, **init_parameters):
        folder = artifacts if outside else root / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        model_file = folder / f"{name}{suffix}"
        model.save(model_file)
        explainer_dir = None
        if explainer is not None:
            explainer_dir = folder / "explainer"
            explainer.save(explainer_dir)
        explainer_class = type(explainer) if explainer is not None else IntegratedGradients
        served[name] = ServedModel(
            name, model_file, explainer_dir, init_parameters, explainer_class, extra or {}
        )

    model = classifier()
    add("classifier", model, ".keras", IntegratedGradients(model, n_steps=20))
    add(
        "regression",
        regression(),
        ".h5",
        outside=True,
        extra=REGRESSION_LIMITS,
        n_steps=30,
        method="riemann_trapezoid",
    )
    model = classifier()
    add("auto-steps", model, ".keras", IntegratedGradients(model, n_steps="auto"))
    model = classifier()
    background = floats((8, 6), seed=20)
    add("expected-gradients", model, ".keras", ExpectedGradients(model, background, 16, seed=0))
    model = classifier()
    smooth = NoiseTunnel(IntegratedGradients(model, n_steps=8), nt_samples=3, stdevs=0.2, seed=0)
    add("noise-tunnel", model, ".keras", smooth)
    model = image_classifier()
    regions = XRAI(IntegratedGradients(model, n_steps=16), quadrants(), min_pixel_diff=1)
    add("xrai", model, ".keras", regions)
    model = two_inputs()
    add("two-inputs", model, ".keras", IntegratedGradients(model, internal_batch_size=7))
    model = text()
    add(
        "text",
        model,
        ".keras",
        IntegratedGradients(model, model.get_layer("embedding"), n_steps=16),
    )

    for each in served.values():
        folder = root / "models" / each.name
        folder.mkdir(parents=True, exist_ok=True)
        settings = json.dumps(each.settings(folder), indent=2)
        (folder / "model-settings.json").write_text(settings)
    return served


def floats(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def token_ids(n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, VOCABULARY, size=(n_samples, LENGTH)).astype("int32")
