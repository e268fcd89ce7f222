"""``n_steps="auto"`` against the smallest fixed Gauss-Legendre ``n_steps`` that does as well.

On five models: the digits CNN of the docs (trained for a few seconds on scikit-learn's bundled
digits), a ReLU MLP trained on the same digits, a deeper ReLU CNN trained on the digits
upsampled to 32x32, workload 1's small CNN (28x28x1, ReLU
convolutions and a ReLU dense layer, seeded untrained weights, random images: its integrands
are nearly straight), and the tiny smooth model of ``targets_and_steps.py`` (one steep
sigmoid unit whose threshold only 10 of 200 samples' paths cross). For each model and tolerance:

- a 4,096-node Gauss-Legendre reference; a sample's error is the sum over its features of
  ``|attribution - reference|``, relative to ``|F(x) - F(x')|`` (what the tolerance bounds);
- the smallest fixed Gauss-Legendre ``n_steps`` (from a list) whose error is within the
  tolerance on every sample;
- ``n_steps="auto"``: the share of samples within the tolerance, the share whose error is
  within their own ``error_estimates`` (honest estimates), the gradients taken, the rounds
  (compiled calls) and the wall time, against the fixed rule's, with the part of each spent
  inside the compiled calls (the rest is the host's numpy and Python); medians of timed runs
  taken in alternation, after one untimed run of each; and each explain's time per gradient
  (auto is faster only where its gradient ratio is below the ratio of these). Where numba is
  installed (``ig_plugin[fast]``), auto runs its compiled rounds, and the same rounds in numpy
  (``IG_PLUGIN_NUMBA=0``) are timed in the same alternation;
- on the ReLU models, how many ReLU units switch along each path (their on/off pattern compared
  at 512 points): what makes the integrand rough.

With ``--wider``, the same on two wider ReLU MLPs trained on the digits (hidden layers of 512
and 256 units, and of 1,024 and 512): gradients several times as dear as the digits MLP's,
and more units to switch along each path.

    python benchmarks/auto_steps.py [--repeats 5] [--wider] [--models 0,2] [--output PATH]

Writes the JSON (by default ``results/auto_steps.json``, or ``results/auto_steps_wider.json``
with ``--wider``) and an RST table next to it (docs/steps.rst includes both). About 5 minutes
on two cores with ``--repeats 15``, and 2 to 3 more with ``--wider``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from machine import LoadMeter, describe
from report import _list_table, measured_on, write_report
from targets_and_steps import hard_and_easy_batch
from workloads import WORKLOADS

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from image_digits import digit_images, train_cnn

from ig_plugin import IntegratedGradients
from ig_plugin._engine.tracing import TracedOnceFunction
from ig_plugin._integral import driver, fused_refinement

RESULTS = Path(__file__).parent / "results"
TOLERANCES = (1e-2, 1e-3)
FIXED_STEPS = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072)
BATCH = 4096


def digits_cnn() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    X = images[test][:48]
    return model, X, np.argmax(model.predict(X, verbose=0), axis=1)


def _trained_on_digits(
    layers: list[keras.layers.Layer], images: np.ndarray, epochs: int, n_explained: int
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """``layers`` (made after ``keras.utils.set_random_seed(0)``) after an input shaped like
    ``images`` (the digits, reshaped), trained on the digits' training split; the first
    ``n_explained`` test images and the classes predicted for them."""
    _, labels, train, test = digit_images()
    model = keras.Sequential([keras.Input(images.shape[1:]), *layers])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(images[train], labels[train], epochs=epochs, batch_size=32, verbose=0)
    X = images[test][:n_explained]
    return model, X, np.argmax(model.predict(X, verbose=0), axis=1)


def digits_mlp() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A ReLU MLP (64-128-64-10) trained for a few seconds on the flattened digits."""
    return digits_mlp_of((128, 64))()


def digits_mlp_of(
    widths: tuple[int, ...],
) -> Callable[[], tuple[keras.Model, np.ndarray, np.ndarray]]:
    """A maker of a ReLU MLP on the flattened digits with hidden layers of ``widths`` units,
    trained for a few seconds (30 epochs), and its first 96 test images."""

    def make() -> tuple[keras.Model, np.ndarray, np.ndarray]:
        images = digit_images()[0]
        keras.utils.set_random_seed(0)
        layers = [keras.layers.Dense(width, activation="relu") for width in widths]
        layers.append(keras.layers.Dense(10, activation="softmax"))
        flat = images.reshape(len(images), -1)
        return _trained_on_digits(layers, flat, epochs=30, n_explained=96)

    return make


def digits_cnn_32() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A deeper ReLU CNN (two convolutions, a ReLU dense layer) trained for a few seconds on the
    digits upsampled to 32x32: gradients about ten times as dear as the 8x8 CNN's."""
    images = digit_images()[0]
    keras.utils.set_random_seed(0)
    layers = [
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
    large = np.kron(images, np.ones((1, 4, 4, 1), dtype=images.dtype))
    return _trained_on_digits(layers, large, epochs=4, n_explained=24)


def small_cnn() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    workload = WORKLOADS["cnn"]
    model, X = workload.build(), workload.make_inputs(24)
    return model, X, np.argmax(model.predict(X, verbose=0), axis=1)


def tiny_smooth() -> tuple[keras.Model, np.ndarray, None]:
    model, X = hard_and_easy_batch()
    return model, X, None


MODELS = {
    "digits CNN, 8x8x1 (48 images)": digits_cnn,
    "digits ReLU MLP, 64 features (96 images)": digits_mlp,
    "digits CNN, 32x32x1, two convolutions (24 images)": digits_cnn_32,
    "small CNN, 28x28x1, seeded weights (24 images)": small_cnn,
    "tiny smooth model, 16 features (200 samples)": tiny_smooth,
}


#: ``--wider``: the digits MLP made wider, its gradients dearer and more of its units switching
#: along each path (docs/steps.rst says what that does to auto at 1e-2 and 1e-3).
WIDER_MODELS = {
    "digits ReLU MLP, 64-512-256-10 (96 images)": digits_mlp_of((512, 256)),
    "digits ReLU MLP, 64-1024-512-10 (96 images)": digits_mlp_of((1024, 512)),
}


def relu_switches(model: keras.Model, X: np.ndarray, points: int = 512) -> np.ndarray:
    """Per sample, how many ReLU units change state between successive points of its path
    from 0 (summed over the path)."""
    layers = [
        layer
        for layer in model.layers
        if getattr(layer, "activation", None) is keras.activations.relu
    ]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    alphas = np.linspace(0.0, 1.0, points, dtype=np.float32)
    counts = []
    for x in X:
        path = alphas.reshape(-1, *([1] * x.ndim)) * x[None]
        states = probe.predict(path, batch_size=points, verbose=0)
        states = states if isinstance(states, list) else [states]
        on = np.concatenate([s.reshape(points, -1) > 0 for s in states], axis=1)
        counts.append(int((on[1:] != on[:-1]).sum()))
    return np.array(counts)


class Rounds:
    """Counts the compiled calls ``n_steps="auto"`` makes (one per round and group)."""

    def __init__(self) -> None:
        self.count = 0
        self._original = driver._integrand

        def counted(paths, progress):
            integrand_at = self._original(paths, progress)

            def call(samples, alphas):
                self.count += 1
                return integrand_at(samples, alphas)

            return call

        driver._integrand = counted

    def close(self) -> None:
        driver._integrand = self._original


class CompiledTime:
    """Sums the wall time spent inside the compiled functions (the model's gradients and
    outputs) while open: the rest of an explain is the host's work (numpy and Python)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = TracedOnceFunction.__call__
        original = self._original

        def timed(function, *args):
            start = time.perf_counter()
            try:
                return original(function, *args)
            finally:
                self.seconds += time.perf_counter() - start

        TracedOnceFunction.__call__ = timed

    def close(self) -> None:
        TracedOnceFunction.__call__ = self._original


def _seconds(run, *args, **kwargs) -> tuple[float, float]:
    """The wall time of ``run(*args, **kwargs)`` and the part of it in compiled calls."""
    compiled = CompiledTime()
    try:
        start = time.perf_counter()
        run(*args, **kwargs)
        return time.perf_counter() - start, compiled.seconds
    finally:
        compiled.close()


@contextlib.contextmanager
def numpy_rounds() -> Iterator[None]:
    """``n_steps="auto"`` on its numpy rounds while open, although numba is installed."""
    switch = fused_refinement.ENVIRONMENT_SWITCH
    before = os.environ.get(switch)
    os.environ[switch] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[switch]
        else:
            os.environ[switch] = before


def measure(title: str, make, repeats: int) -> list[dict[str, Any]]:
    model, X, target = make()
    kwargs: dict[str, Any] = {"target": target, "baselines": 0.0}

    def explainer(**settings) -> IntegratedGradients:
        return IntegratedGradients(model, internal_batch_size=BATCH, **settings)

    reference = explainer(n_steps=4096).explain(X, **kwargs)
    features = tuple(range(1, X.ndim))
    change = reference.attributions[0].sum(axis=features) - reference.deltas

    def errors(explanation) -> np.ndarray:
        error = np.abs(explanation.attributions[0].astype(np.float64) - reference.attributions[0])
        return error.sum(axis=features) / np.maximum(np.abs(change), 1e-12)

    fixed_errors: dict[int, float] = {}
    switches = None
    if target is not None:
        switches = relu_switches(model, X)
    rows = []
    for tolerance in TOLERANCES:
        smallest = None
        for n_steps in FIXED_STEPS:
            if n_steps not in fixed_errors:
                fixed_errors[n_steps] = float(
                    errors(explainer(n_steps=n_steps).explain(X, **kwargs)).max()
                )
            if fixed_errors[n_steps] <= tolerance:
                smallest = n_steps
                break
        auto_explainer = explainer(n_steps="auto", tolerance=tolerance)
        rounds = Rounds()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = auto_explainer.explain(X, **kwargs)
        rounds.close()
        auto_errors = errors(auto)
        estimates = np.asarray(auto.error_estimates) / np.maximum(np.abs(change), 1e-12)
        fixed_explainer = explainer(n_steps=smallest or FIXED_STEPS[-1])
        fixed_explainer.explain(X, **kwargs)
        compiled_rounds = fused_refinement.available()
        auto_times, fixed_times, numpy_times = [], [], []
        load = LoadMeter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if compiled_rounds:
                with numpy_rounds():
                    auto_explainer.explain(X, **kwargs)
            for _ in range(repeats):
                auto_times.append(_seconds(auto_explainer.explain, X, **kwargs))
                fixed_times.append(_seconds(fixed_explainer.explain, X, **kwargs))
                if compiled_rounds:
                    with numpy_rounds():
                        numpy_times.append(_seconds(auto_explainer.explain, X, **kwargs)[0])
        (auto_s, auto_compiled_s), (fixed_s, fixed_compiled_s) = (
            [statistics.median(part) for part in zip(*times, strict=True)]
            for times in (auto_times, fixed_times)
        )
        others = load.stop()
        rows.append(
            {
                "model": title,
                "n_samples": len(X),
                "tolerance": tolerance,
                "smallest_fixed_n_steps": smallest,
                "fixed_max_error_at_largest": fixed_errors[FIXED_STEPS[-1]]
                if smallest is None
                else None,
                "fixed_gradients": len(X) * (smallest or FIXED_STEPS[-1]),
                "auto_gradients": int(auto.n_steps.sum()),
                "auto_steps_median": float(np.median(auto.n_steps)),
                "auto_steps_max": int(auto.n_steps.max()),
                "auto_rounds": rounds.count,
                "auto_within_tolerance": float(np.mean(auto_errors <= tolerance)),
                "auto_honest": float(np.mean(auto_errors <= estimates * (1 + 1e-6) + 1e-9)),
                "auto_max_error": float(auto_errors.max()),
                "auto_warnings": len(caught),
                "auto_s": auto_s,
                "fixed_s": fixed_s,
                "auto_compiled_s": auto_compiled_s,
                "fixed_compiled_s": fixed_compiled_s,
                "auto_rounds_in": "numba" if compiled_rounds else "numpy",
                "auto_numpy_rounds_s": statistics.median(numpy_times) if numpy_times else None,
                "load": others,
                "relu_switches_median": None if switches is None else float(np.median(switches)),
                "relu_switches_max": None if switches is None else int(switches.max()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _per_gradient(row: dict[str, Any]) -> str:
    """The explain's wall time per gradient it took, fixed and auto, and the part of auto's
    that is its host work: the time ratio is the gradient ratio times the ratio of these, so
    auto wins on time only where its gradient ratio is below ``fixed / auto``."""
    fixed = row["fixed_s"] / row["fixed_gradients"] * 1e6
    auto = row["auto_s"] / row["auto_gradients"] * 1e6
    host = (row["auto_s"] - row["auto_compiled_s"]) / row["auto_gradients"] * 1e6
    return f"{fixed:.1f} / {auto:.1f} ({host:.1f})"


def _numpy_rounds_ratio(row: dict[str, Any]) -> str:
    """Auto's time with its rounds' host work in numpy, against the fixed rule's: the time
    ratio itself where numba was not installed."""
    if row.get("auto_rounds_in", "numpy") == "numpy":
        return f"{row['auto_s'] / row['fixed_s']:.2f}"
    return f"{row['auto_numpy_rounds_s'] / row['fixed_s']:.2f}"


def render(report: dict[str, Any]) -> str:
    rows = []
    for row in report["rows"]:
        fixed = row["smallest_fixed_n_steps"]
        rows.append(
            [
                row["model"],
                f"{row['tolerance']:g}",
                str(fixed) if fixed else f"> {FIXED_STEPS[-1]}",
                f"{row['fixed_gradients']:,}",
                f"{row['auto_gradients']:,} ({row['auto_steps_median']:.0f} / "
                f"{row['auto_steps_max']})",
                f"{row['auto_gradients'] / row['fixed_gradients']:.2f}",
                f"{row['auto_within_tolerance']:.0%} / {row['auto_honest']:.0%}",
                str(row["auto_rounds"]),
                f"{row['fixed_s']:.3f} / {row['auto_s']:.3f}",
                f"{row['auto_s'] / row['fixed_s']:.2f}",
                _numpy_rounds_ratio(row),
                f"{row['fixed_compiled_s']:.3f} / {row['auto_compiled_s']:.3f}",
                _per_gradient(row),
            ]
        )
    lines = _list_table(
        "n_steps='auto' against the smallest fixed Gauss-Legendre n_steps that meets the "
        "tolerance on every sample",
        [
            "model",
            "tolerance",
            "fixed n_steps",
            "gradients, fixed",
            "gradients, auto (median / max per sample)",
            "gradient ratio",
            "auto within tolerance / within its estimate",
            "auto rounds",
            "time fixed / auto (s)",
            "time ratio",
            "time ratio, auto's rounds in numpy",
            "of which in compiled calls, fixed / auto (s)",
            "us per gradient, fixed / auto (auto's host work)",
        ],
        rows,
    )
    switches = {
        row["model"]: (row["relu_switches_median"], row["relu_switches_max"])
        for row in report["rows"]
        if row["relu_switches_median"] is not None
    }
    said = "; ".join(
        f"{model}: median {median:.0f}, at most {most}"
        for model, (median, most) in switches.items()
    )
    rounds_in = {row.get("auto_rounds_in", "numpy") for row in report["rows"]}
    compiled = (
        "Auto's rounds compiled (numba)"
        if rounds_in == {"numba"}
        else "Auto's rounds in numpy (numba not installed)"
    )
    lines.append(f"{measured_on(report)} {compiled}. ReLU units switching along a path ({said}).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", help="indices into the models, comma-separated (default: all)")
    parser.add_argument(
        "--wider",
        action="store_true",
        help="measure the wider digits MLPs instead (default output results/auto_steps_wider.json)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    models = WIDER_MODELS if args.wider else MODELS
    output = args.output or RESULTS / ("auto_steps_wider.json" if args.wider else "auto_steps.json")
    indices = args.models.split(",") if args.models else range(len(models))
    chosen = [list(models.items())[int(i)] for i in indices]
    report: dict[str, Any] = {"machine": describe(), "rows": []}
    for title, make in chosen:
        report["rows"] += measure(title, make, args.repeats)
    write_report(report, output, render)


if __name__ == "__main__":
    main()
