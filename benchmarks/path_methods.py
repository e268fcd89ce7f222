"""Guided IG and Blur IG against PAIR saliency 0.2.1, on the same CNN, images and settings.

    make benchmark-path-methods           # installs the `pair` extra, runs this
    python benchmarks/path_methods.py --quick   # in a venv with ig_plugin and saliency==0.2.1

The CNN (Conv2D 16 3x3 relu, MaxPooling 2, Conv2D 32 3x3 relu, Dense 10 softmax, seeded and
fitted for 3 epochs) reads scikit-learn's 8x8 digits enlarged to 28x28 (bilinear zoom). N = 32
digits are explained for their predicted class with each method's defaults (PAIR's and
ig_plugin's are the same): Guided IG with 200 steps, fraction 0.25, max_dist 0.02 from a black
baseline; Blur IG with max_sigma 50, 100 steps, grad_step 0.01.

PAIR explains one image at a time through a ``call_model_function``; it gets the gradients from
a compiled ``tf.function`` (faster than the eager tape of PAIR's examples, so the ratio is not
inflated by eager overhead). Blur IG runs PAIR both with its default ``batch_size=1`` and with
``batch_size=100`` (all of an image's points in one call; right for the evenly spaced sigmas
used here, whereas with ``sqrt=True`` 0.2.1 scales a whole batch by its last step's sigma
interval). ig_plugin explains the 32 images in one ``explain``, warmed up once (tracing) and
then timed ``repeats`` times before PAIR's run and ``repeats`` times after it (median and
fastest of them all, so that a change in the machine's load weighs on both). PAIR, much slower,
is timed once after a one-image warm-up, and again (up to ``repeats`` runs, each followed by
``repeats`` of ig_plugin's) while its runs so far took under 10 s; the median of its runs is
compared. Agreement is the largest relative L1 difference ``sum|ours - PAIR| / sum|PAIR|`` over
the 32 images.

Guided IG's choice of features at each step is discontinuous in the gradients: float32 gradients
computed in a batch of 32 can differ in their last digits from those of a batch of one (PAIR's),
and send a sample along another path. So its agreement is given twice: ig_plugin's batched
explain against PAIR, and ig_plugin explaining one image at a time (PAIR's numerics) against
PAIR.

Peak memory: the growth of resident memory during one ``explain`` of N = 32, 512 and 2048 images
(``internal_batch_size=100``), each in a fresh process (as ``benchmarks/memory.py`` measures it),
beside the growth beyond the arrays that the explanation holds (X, its baselines and the
attributions), and what all of the explain's path points would take if they were held at once
(``N * n_steps`` images). Writes
``benchmarks/results/path_methods.{json,rst}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from machine import LoadMeter, cpu_model, describe
from report import write_report

RESULTS = Path(__file__).parent / "results"
N = 32
GUIDED = {"n_steps": 200, "fraction": 0.25, "max_dist": 0.02}
BLUR = {"max_sigma": 50.0, "n_steps": 100, "grad_step": 0.01}
MEMORY_SIZES = (32, 512, 2048)
#: PAIR runs again (up to ``repeats`` runs, alternating with ig_plugin's) while its runs so far
#: took less than this.
PAIR_BUDGET_S = 10.0


def digits_28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, scaled to [0, 1] and zoomed from 8x8 to 28x28 pixels."""
    from scipy import ndimage
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16.0
    zoomed = ndimage.zoom(images, (1, 3.5, 3.5), order=1)
    return np.clip(zoomed, 0, 1)[..., np.newaxis].astype("float32"), digits.target


def build_model() -> tuple[keras.Model, np.ndarray]:
    """The CNN, fitted briefly with fixed seeds, and the N explained digits."""
    keras.utils.set_random_seed(0)
    images, labels = digits_28()
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    hidden = keras.layers.MaxPooling2D(2)(hidden)
    hidden = keras.layers.Conv2D(32, 3, activation="relu")(hidden)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[N:], labels[N:], epochs=3, batch_size=64, verbose=0)
    return model, images[:N]


def pair_call(model: keras.Model) -> Callable[..., dict]:
    """PAIR's ``call_model_function``: the gradients of the target class, compiled."""
    import saliency.core

    @tf.function(reduce_retracing=True)
    def gradients(points: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(points)
            outputs = tf.gather(model(points), target, axis=1)
        return tape.gradient(outputs, points)

    def call(x: Any, call_model_args: Any = None, expected_keys: Any = None) -> dict:
        points = tf.constant(np.asarray(x, dtype="float32"))
        grads = gradients(points, tf.constant(call_model_args["target"]))
        return {saliency.core.INPUT_OUTPUT_GRADIENTS: grads.numpy()}

    return call


def ours(method: str, model: keras.Model) -> Any:
    from ig_plugin import BlurIntegratedGradients, GuidedIntegratedGradients

    if method == "Guided IG":
        return GuidedIntegratedGradients(model, **GUIDED)
    return BlurIntegratedGradients(model, **BLUR)


def pair_masks(method: str, model: keras.Model, X: np.ndarray, targets: np.ndarray, **options: Any):
    """PAIR's attributions of every image, one image at a time."""
    import saliency.core

    call = pair_call(model)
    masks = []
    for image, target in zip(X, targets, strict=True):
        if method == "Guided IG":
            masks.append(
                saliency.core.GuidedIG().GetMask(
                    image,
                    call,
                    {"target": int(target)},
                    x_baseline=np.zeros_like(image),
                    x_steps=GUIDED["n_steps"],
                    fraction=GUIDED["fraction"],
                    max_dist=GUIDED["max_dist"],
                )
            )
        else:
            masks.append(
                saliency.core.BlurIG().GetMask(
                    image,
                    call,
                    {"target": int(target)},
                    max_sigma=BLUR["max_sigma"],
                    steps=BLUR["n_steps"],
                    grad_step=BLUR["grad_step"],
                    **options,
                )
            )
    return np.stack(masks)


def _seconds(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def time_method(method: str, model: keras.Model, X: np.ndarray, repeats: int) -> list[dict]:
    """ig_plugin's medians and PAIR's single runs for one method (two PAIR rows for Blur IG)."""
    targets = np.argmax(model.predict(X, verbose=0), axis=1)
    explainer = ours(method, model)
    first, explanation = _seconds(lambda: explainer.explain(X, target=targets))

    def ours_runs() -> list[float]:
        return [_seconds(lambda: explainer.explain(X, target=targets))[0] for _ in range(repeats)]

    attributions = explanation.attributions[0]
    peers = {"PAIR": {}} if method == "Guided IG" else {
        "PAIR (batch_size=1)": {"batch_size": 1},
        "PAIR (batch_size=100)": {"batch_size": 100},
    }  # fmt: skip
    rows = []
    for peer, options in peers.items():
        pair_masks(method, model, X[:1], targets[:1], **options)  # warm-up (tracing)

        def pair_run() -> tuple[float, np.ndarray]:
            return _seconds(lambda: pair_masks(method, model, X, targets, **options))  # noqa: B023

        runs = ours_runs()
        seconds, masks = pair_run()
        pair_runs = [seconds]
        runs += ours_runs()
        # A peer that takes seconds, not tens of seconds, runs again, in alternation with ours.
        while sum(pair_runs) < PAIR_BUDGET_S and len(pair_runs) < repeats:
            pair_runs.append(pair_run()[0])
            runs += ours_runs()
        differences = [
            float(np.abs(a - m).sum() / np.abs(m).sum())
            for a, m in zip(attributions, masks, strict=True)
        ]
        row_agreement = {}
        if method == "Guided IG":
            # One image per explain: the gradients come in batches of one, as PAIR's do.
            alone = np.concatenate(
                [
                    explainer.explain(X[i : i + 1], target=targets[i : i + 1]).attributions[0]
                    for i in range(len(X))
                ]
            )
            row_agreement["max_relative_l1_one_at_a_time"] = max(
                float(np.abs(a - m).sum() / np.abs(m).sum())
                for a, m in zip(alone, masks, strict=True)
            )
        rows.append(
            {
                **row_agreement,
                "median_relative_l1": float(np.median(differences)),
                "images_above_1e-3": int(np.sum(np.array(differences) > 1e-3)),
                "method": method,
                "peer": peer,
                "ig_plugin_median_s": statistics.median(runs),
                "ig_plugin_fastest_s": min(runs),
                "ig_plugin_first_s": first,
                "peer_s": statistics.median(pair_runs),
                "peer_runs": len(pair_runs),
                "ratio": statistics.median(pair_runs) / statistics.median(runs),
                "max_relative_l1": max(differences),
                "deltas_mean_abs": float(np.abs(explanation.deltas).mean()),
            }
        )
    return rows


def measure_memory(method: str, n_samples: int) -> dict:
    """Peak resident growth of one ``explain`` of ``n_samples`` images, in this process."""
    from memory import _reset_peak, _status_kib

    model, X = build_model()
    X = np.resize(X, (n_samples, *X.shape[1:]))
    explainer = ours(method, model)
    explainer.explain(X[:2], target=0)
    baseline = _status_kib()["VmRSS"]
    reset = _reset_peak()
    explanation = explainer.explain(X, target=0)
    peak = _status_kib()["VmHWM"]
    held = [X, explanation.data["baselines"], *explanation.attributions]
    arrays_mib = sum(np.asarray(a).nbytes for a in held) / 1024**2
    n_steps = GUIDED["n_steps"] if method == "Guided IG" else BLUR["n_steps"]
    return {
        "method": method,
        "n_samples": n_samples,
        "path_points_mib": X.nbytes * n_steps / 1024**2,
        "growth_mib": (peak - baseline) / 1024,
        "explanation_arrays_mib": arrays_mib,
        "growth_beyond_arrays_mib": (peak - baseline) / 1024 - arrays_mib,
        "peak_reset": reset,
    }


def memory_in_fresh_process(method: str, n_samples: int) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--memory", method, str(n_samples)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Measured on {machine['cpu']}, {machine['cores']} cores (load average "
        f"{results['loadavg']} before; other processes kept {results['busy_cores']:.2f} cores "
        f"busy during the runs); TensorFlow {machine['tensorflow']}, saliency "
        f"{machine['saliency']}. Command: ``{results['command']}``. N = {N} digits (28x28), "
        f"each method's defaults; ig_plugin: median and fastest of {results['repeats']} runs "
        "after a warm-up call, before and after each of PAIR's runs; PAIR: median of its runs "
        "(one if it took over 10 s, else up to "
        f"{results['repeats']}), after a one-image warm-up.",
        "",
        ".. list-table:: Guided IG and Blur IG against PAIR saliency: seconds for N = 32 images",
        "   :header-rows: 1",
        "",
        "   * - method",
        "     - peer",
        "     - ig_plugin (s)",
        "     - peer (s), runs",
        "     - peer / ig_plugin",
        "     - ig_plugin fastest / first call (s)",
        "     - relative L1 difference: largest / median (images above 1e-3)",
    ]
    for row in results["rows"]:
        lines += [
            f"   * - {row['method']}",
            f"     - {row['peer']}",
            f"     - {row['ig_plugin_median_s']:.2f}",
            f"     - {row['peer_s']:.2f}, {row['peer_runs']}",
            f"     - {row['ratio']:.1f}x",
            f"     - {row['ig_plugin_fastest_s']:.2f} / {row['ig_plugin_first_s']:.2f}",
            f"     - {row['max_relative_l1']:.1e} / {row['median_relative_l1']:.1e} "
            f"({row['images_above_1e-3']} of {N})",
        ]
    for row in results["rows"]:
        if "max_relative_l1_one_at_a_time" in row:
            lines += [
                "",
                f"{row['method']}, ig_plugin explaining one image at a time (gradients in batches "
                "of one, as PAIR's): largest relative L1 difference from PAIR "
                f"{row['max_relative_l1_one_at_a_time']:.1e}.",
            ]
    lines += [
        "",
        ".. list-table:: Peak resident memory growth of one explain, by N: in all / beyond the "
        "explanation's arrays / all path points at once (MiB)",
        "   :header-rows: 1",
        "",
        "   * - method",
        *[f"     - N = {n}" for n in MEMORY_SIZES],
    ]
    for method in ("Guided IG", "Blur IG"):
        growth = {m["n_samples"]: m for m in results["memory"] if m["method"] == method}
        lines += [f"   * - {method}"]
        lines += [
            f"     - {growth[n]['growth_mib']:.1f} / {growth[n]['growth_beyond_arrays_mib']:.1f}"
            f" / {growth[n]['path_points_mib']:.0f}"
            for n in MEMORY_SIZES
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--memory", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS / "path_methods.json")
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(measure_memory(args.memory[0], int(args.memory[1]))))
        return
    repeats = 1 if args.quick else args.repeats
    with open("/proc/loadavg") as loadavg:
        before = " ".join(loadavg.read().split()[:3])
    print(f"CPU: {cpu_model()}; load average before: {before}", flush=True)
    model, X = build_model()
    load = LoadMeter()
    rows = []
    for method in ("Guided IG", "Blur IG"):
        for row in time_method(method, model, X, repeats):
            rows.append(row)
            print(
                f"{method}: ig_plugin {row['ig_plugin_median_s']:.2f} s, {row['peer']} "
                f"{row['peer_s']:.2f} s: {row['ratio']:.1f}x, relative L1 "
                f"{row['max_relative_l1']:.1e}",
                flush=True,
            )
    busy = load.stop()
    memory = []
    for method in ("Guided IG", "Blur IG"):
        for n_samples in MEMORY_SIZES:
            memory.append(memory_in_fresh_process(method, n_samples))
            print(
                f"memory {method} N={n_samples}: {memory[-1]['growth_mib']:.1f} MiB "
                f"({memory[-1]['growth_beyond_arrays_mib']:.1f} beyond the arrays)",
                flush=True,
            )
    results: dict[str, Any] = {
        "command": "python benchmarks/path_methods.py" + (" --quick" if args.quick else ""),
        "repeats": repeats,
        "loadavg": before,
        "busy_cores": busy,
        "rows": rows,
        "memory": memory,
        "machine": {**describe(), "saliency": metadata.version("saliency")},
    }
    write_report(results, args.output, render)


if __name__ == "__main__":
    main()
