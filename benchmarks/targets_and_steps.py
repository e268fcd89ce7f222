"""Issue 15's two measurements: many targets in one pass, and a step count chosen by the error.

1. K = 2, 5, 10 and 100 targets on workloads 1 and 2 (the small CNN, 100 images, and the
   residual CNN, 32 images; 50 Gauss-Legendre steps, ``internal_batch_size=500``): one
   ``explain(X, targets=[...])`` against K calls ``explain(X, target=k)``; medians of timed runs
   taken in alternation. Targets: never slower than the K calls, and K = 10 on workload 1 at most
   0.75x.
2. ``n_steps="auto"`` on a batch where a few samples are hard: a smooth model with one steep
   sigmoid unit, whose threshold only the hard samples' paths cross. Against a 4,096-node
   reference, the smallest fixed Gauss-Legendre ``n_steps`` that meets the tolerance on every
   sample (the same criterion auto uses: the sum over features of |error| at most
   ``tolerance * |F(x) - F(x')|``) is found by search; the gradient evaluations of both are
   reported, and the time. Target: auto at most 0.5x the evaluations.

    python benchmarks/targets_and_steps.py [--repeats 7] [--many-repeats 3] [--workloads cnn,resnet]
        [--only many_targets|chosen_steps] [--output results/targets_and_steps.json]

Writes the JSON and RST tables (the docs include them) next to it: ``targets_and_steps.rst``
with both measurements, ``targets_and_steps_many.rst`` with the first alone.
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


MANY_TARGETS_WORKLOADS = ("cnn", "resnet")
TARGET_COUNTS = (2, 5, 10, 100)


def _medians(times: dict[Any, list[float]]) -> dict[Any, float]:
    return {key: statistics.median(values) for key, values in times.items()}


def many_targets(repeats: int, key: str, counts: tuple[int, ...] = TARGET_COUNTS) -> dict[str, Any]:
    """K targets in one ``explain(X, targets=[...])`` against K calls ``explain(X, target=k)``.

    The targets are classes ``0, 1, ..., 9, 0, 1, ...`` (K = 100 names each class ten times).
    Each repeat times the ten one-target calls (one per class) and every one-pass call, in
    alternation; K separate calls cost the sum of their targets' one-call medians (for K = 100,
    ten times the ten calls: a call's cost does not depend on the others).
    """
    workload = WORKLOADS[key]
    model, X = workload.build(), workload.make_inputs(workload.n_samples)
    explainer = IntegratedGradients(model, n_steps=50, internal_batch_size=500)
    classes = int(model.output_shape[-1])
    lists = {k: [i % classes for i in range(k)] for k in counts}
    for k in range(classes):  # trace every kind of call first
        explainer.explain(X, target=k)
    for targets in lists.values():
        explainer.explain(X, targets=targets)
    alone: dict[int, list[float]] = {k: [] for k in range(classes)}
    together: dict[int, list[float]] = {k: [] for k in counts}
    load = LoadMeter()
    for _ in range(repeats):
        for k in range(classes):
            alone[k].append(_seconds(lambda k=k: explainer.explain(X, target=k)))
        for count, targets in lists.items():
            together[count].append(_seconds(lambda t=targets: explainer.explain(X, targets=t)))
    others = load.stop()
    one_call, one_pass = _medians(alone), _medians(together)
    rows = []
    for count, targets in lists.items():
        separately = sum(one_call[k] for k in targets)
        ratio = one_pass[count] / separately
        rows.append(
            {
                "targets": count,
                "together_s": one_pass[count],
                "together_fastest_s": min(together[count]),
                "separately_s": separately,
                "ratio": ratio,
                "never_slower": ratio <= 1.0,
            }
        )
    return {
        "workload": workload.title,
        "n_samples": len(X),
        "n_steps": 50,
        "internal_batch_size": 500,
        "repeats": repeats,
        "one_call_s": one_call,
        "rows": rows,
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


def render(report: dict[str, Any], many_only: bool = False) -> str:
    """The RST tables; with ``many_only`` the many-targets table alone (the performance page
    includes it)."""
    steps = None if many_only else report.get("chosen_steps")
    rows = []
    for many in report["many_targets"]:
        for row in many["rows"]:
            target = "<= 0.75" if row["targets"] == 10 and many["workload"].startswith("1.") else ""
            met = row["ratio"] <= (0.75 if target else 1.0)
            rows.append(
                [
                    many["workload"].replace(".", "\\.", 1),
                    str(many["n_samples"]),
                    str(row["targets"]),
                    f"{row['together_s']:.3f}",
                    f"{row['separately_s']:.3f}",
                    f"{row['ratio']:.2f}",
                    f"{'met' if met else 'MISSED'} ({target or '<= 1'})",
                    f"{many['load']:.2f}",
                ]
            )
    lines = _list_table(
        "Many targets in one pass",
        [
            "workload",
            "N",
            "K",
            "one pass (s)",
            "K separate calls (s)",
            "ratio",
            "target",
            "other load (cores)",
        ],
        rows,
    )
    machine = report["machine"]
    if steps is None:
        lines.append(
            f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
            f"{machine['tensorflow']}; the last column is the cores other processes kept busy "
            "during each workload's runs. K separate calls cost the sum of their targets' "
            "one-call medians (K = 100 names each of the ten classes ten times)."
        )
        return "\n".join(lines) + "\n"
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
    lines.append(
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}; the last column is the cores other processes kept busy "
        "during each workload's many-targets runs. K separate calls cost the sum of their "
        "targets' one-call medians. Auto took "
        f"{steps['auto_steps_easy']} gradients per easy sample and "
        f"{steps['auto_steps_hard']} per hard one."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--many-repeats", type=int, default=3, help="repeats of the many-targets runs (long)"
    )
    parser.add_argument(
        "--workloads", type=lambda s: s.split(","), default=list(MANY_TARGETS_WORKLOADS)
    )
    parser.add_argument(
        "--only", choices=["many_targets", "chosen_steps"], help="run one measurement only"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "targets_and_steps.json")
    args = parser.parse_args(argv)
    # A measurement left out (--only) keeps its figures from the last full run.
    report = json.loads(args.output.read_text()) if args.output.exists() else {}
    report["machine"] = describe()
    if args.only in (None, "many_targets"):
        report["many_targets"] = [many_targets(args.many_repeats, key) for key in args.workloads]
    if args.only in (None, "chosen_steps"):
        report["chosen_steps"] = chosen_steps(args.repeats)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    rst = render(report)
    args.output.with_suffix(".rst").write_text(rst)
    many = args.output.with_name(args.output.stem + "_many.rst")
    many.write_text(render(report, many_only=True))
    print(rst)


if __name__ == "__main__":
    main()
