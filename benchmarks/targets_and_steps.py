"""Issue 15's two measurements: many targets in one pass, and a step count chosen by the error.

1. K = 10 targets on workload 1 (the small CNN, 100 images, 50 Gauss-Legendre steps): one
   ``explain(X, targets="all")`` against ten ``explain(X, target=k)``; medians of timed runs taken
   in alternation. Target: at most 0.6x.
2. ``n_steps="auto"`` on a batch where a few samples are hard: a smooth model with one steep
   sigmoid unit, whose threshold only the hard samples' paths cross. Against a 4,096-node
   reference, the smallest fixed Gauss-Legendre ``n_steps`` that meets the tolerance on every
   sample (the same criterion auto uses: the sum over features of |error| at most
   ``tolerance * |F(x) - F(x')|``) is found by search; the gradient evaluations of both are
   reported, and the time. Target: auto at most 0.5x the evaluations.

    python benchmarks/targets_and_steps.py [--repeats 7] [--output results/targets_and_steps.json]

Writes the JSON and an RST table (the docs include it) next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from machine import LoadMeter, describe
from report import _list_table
from workloads import WORKLOADS

from ig_plugin import IntegratedGradients

RESULTS = Path(__file__).parent / "results"
TOLERANCE = 1e-3
FIXED_STEPS = (4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def many_targets(repeats: int) -> dict[str, Any]:
    workload = WORKLOADS["cnn"]
    model, X = workload.build(), workload.make_inputs(workload.n_samples)
    explainer = IntegratedGradients(model, n_steps=50, internal_batch_size=500)
    classes = 10

    def together() -> None:
        explainer.explain(X, targets="all")

    def separately() -> None:
        for k in range(classes):
            explainer.explain(X, target=k)

    together(), separately()  # trace both first
    times: dict[str, list[float]] = {"together": [], "separately": []}
    load = LoadMeter()
    for _ in range(repeats):
        times["together"].append(_seconds(together))
        times["separately"].append(_seconds(separately))
    others = load.stop()
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    ratio = medians["together"] / medians["separately"]
    return {
        "workload": workload.title,
        "n_samples": len(X),
        "targets": classes,
        "n_steps": 50,
        "together_s": medians["together"],
        "separately_s": medians["separately"],
        "ratio": ratio,
        "target_met": ratio <= 0.6,
        "load": others,
    }


def hard_and_easy_batch(n_easy: int = 190, n_hard: int = 10) -> tuple[keras.Model, np.ndarray]:
    """A smooth model, ``0.5 * tanh(v . x) + sigmoid(40 (w . x - 1))``, and inputs whose straight
    paths from 0 either stay far below the sigmoid's threshold ``w . x = 1`` (easy) or cross it
    (hard: the integrand is a sharp bump there)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_features = 16
    inputs = keras.Input((n_features,))
    smooth = keras.layers.Dense(1, activation="tanh", use_bias=False)(inputs)
    steep = keras.layers.Dense(1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, keras.layers.Add()([0.5 * smooth, steep]))
    w = rng.normal(size=n_features) / np.sqrt(n_features)
    model.layers[1].set_weights([rng.normal(size=(n_features, 1)) / np.sqrt(n_features)])
    model.layers[2].set_weights([40.0 * w[:, None], np.array([-40.0])])
    X = rng.normal(size=(n_easy + n_hard, n_features))
    projection = X @ w / (w @ w)  # make w . x what each group needs
    wanted = np.concatenate([rng.uniform(-1.0, 0.5, n_easy), rng.uniform(1.2, 2.0, n_hard)])
    X += np.outer(wanted - projection, w)
    return model, X.astype("float32")


def _errors(explanation, reference) -> np.ndarray:
    """Per sample: sum over features of |error|, relative to |F(x) - F(x')|."""
    error = np.abs(explanation.attributions[0].astype(np.float64) - reference.attributions[0])
    change = reference.attributions[0].sum(axis=1) - reference.deltas
    return error.sum(axis=1) / np.maximum(np.abs(change), 1e-12)


def chosen_steps(repeats: int) -> dict[str, Any]:
    model, X = hard_and_easy_batch()

    def explain(**settings):
        return IntegratedGradients(model, internal_batch_size=4096, **settings).explain(X)

    reference = explain(n_steps=4096)
    smallest = None
    for n_steps in FIXED_STEPS:
        if (_errors(explain(n_steps=n_steps), reference) <= TOLERANCE).all():
            smallest = n_steps
            break
    auto_explainer = IntegratedGradients(
        model, n_steps="auto", tolerance=TOLERANCE, internal_batch_size=4096
    )
    fixed_explainer = IntegratedGradients(model, n_steps=smallest, internal_batch_size=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every sample must converge
        auto = auto_explainer.explain(X)
    fixed_explainer.explain(X)
    auto_times, fixed_times = [], []
    for _ in range(repeats):
        auto_times.append(_seconds(lambda: auto_explainer.explain(X)))
        fixed_times.append(_seconds(lambda: fixed_explainer.explain(X)))
    auto_errors = _errors(auto, reference)
    auto_evaluations = int(auto.n_steps.sum())
    fixed_evaluations = len(X) * smallest
    return {
        "n_samples": len(X),
        "tolerance": TOLERANCE,
        "smallest_fixed_n_steps": smallest,
        "fixed_evaluations": fixed_evaluations,
        "auto_evaluations": auto_evaluations,
        "ratio": auto_evaluations / fixed_evaluations,
        "target_met": auto_evaluations <= 0.5 * fixed_evaluations,
        "auto_within_tolerance": float(np.mean(auto_errors <= TOLERANCE)),
        "auto_steps_easy": [int(a) for a in np.unique(auto.n_steps[:190])],
        "auto_steps_hard": [int(a) for a in np.unique(auto.n_steps[190:])],
        "auto_s": statistics.median(auto_times),
        "fixed_s": statistics.median(fixed_times),
    }


def render(report: dict[str, Any]) -> str:
    many, steps = report["many_targets"], report["chosen_steps"]
    lines = _list_table(
        "Many targets in one pass",
        ["workload", "N", "K", "one pass (s)", "K separate calls (s)", "ratio", "target <= 0.6"],
        [
            [
                many["workload"].replace(".", "\\.", 1),
                str(many["n_samples"]),
                str(many["targets"]),
                f"{many['together_s']:.3f}",
                f"{many['separately_s']:.3f}",
                f"{many['ratio']:.2f}",
                "met" if many["target_met"] else "MISSED",
            ]
        ],
    )
    lines += _list_table(
        "A step count chosen by the error (tolerance 1e-3)",
        [
            "N (hard)",
            "smallest fixed n_steps",
            "gradients, fixed",
            "gradients, auto",
            "ratio",
            "auto within tolerance",
            "time fixed / auto (s)",
        ],
        [
            [
                f"{steps['n_samples']} (10)",
                str(steps["smallest_fixed_n_steps"]),
                f"{steps['fixed_evaluations']:,}",
                f"{steps['auto_evaluations']:,}",
                f"{steps['ratio']:.2f}",
                f"{steps['auto_within_tolerance']:.0%}",
                f"{steps['fixed_s']:.3f} / {steps['auto_s']:.3f}",
            ]
        ],
    )
    machine = report["machine"]
    lines.append(
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}; other processes kept {many['load']:.2f} cores busy during the "
        f"many-targets runs. Auto took {steps['auto_steps_easy']} gradients per easy sample and "
        f"{steps['auto_steps_hard']} per hard one."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS / "targets_and_steps.json")
    args = parser.parse_args(argv)
    report = {
        "machine": describe(),
        "many_targets": many_targets(args.repeats),
        "chosen_steps": chosen_steps(args.repeats),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    rst = render(report)
    args.output.with_suffix(".rst").write_text(rst)
    print(rst)


if __name__ == "__main__":
    main()
