"""Sequence models: every position in one pass, against one call per position.

1. Token classification: each sample's predicted tag at each of 16 positions, one
   ``explain(X, targets=(N, 16, 2) tuples)`` against 16 ``explain(X, target=...)``. Target: at
   most 0.35x.
2. Generation: 32 generated tokens after a 16-token prompt, one ``GenerationExplainer.explain``
   against 32 one-row explains of the same path (what the tests prove it equals), and against 32
   runs on each token's prefix (one explain per generated token, as tools that run one
   Integrated Gradients per token do). Target: at most 0.3x.

Each on a small model (width 32, one transformer block) and a medium one (width 128, two
blocks), built from Keras layers with seeded weights; medians of timed runs taken in
alternation, with the cores other processes took meanwhile. Peak memory of both ways: the growth
of the resident set (VmHWM) from the model built to the end of a first run (tracing included;
a second run reuses the allocator's pools), in fresh processes.

One pass does one forward and K backward passes per path point, K calls do K of each: where
arithmetic dominates, the ratio tends to ``(F + K B) / (K (F + B))``, with F and B the times of
a forward and of a backward pass (to the embeddings) of one point. The run measures F and B on
each model, so the table gives that bound beside the measured ratio.

    python benchmarks/sequences.py [--repeats 3] [--output results/sequences.json]

Writes the JSON and an RST table (the docs include it) next to it.
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
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from machine import LoadMeter, describe
from memory import _reset_peak, _status_kib
from report import _list_table, write_report

from ig_plugin import IntegratedGradients
from ig_plugin.text import GenerationExplainer

RESULTS = Path(__file__).parent / "results"
VOCABULARY, N_TAGS, N_STEPS, BATCH = 1000, 9, 32, 256
SIZES = {"small": (32, 1), "medium": (128, 2)}  # width, transformer blocks
TAGGING = {"n_samples": 8, "length": 16, "targets": 16, "goal": 0.35}
GENERATION = {"n_samples": 4, "prompt": 16, "generated": 32, "goal": 0.3}


class AddPositions(keras.layers.Layer):
    """Learned position embeddings for sequences of up to ``length`` tokens, any shorter too."""

    def __init__(self, length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length = length

    def build(self, input_shape: Any) -> None:
        self.table = self.add_weight(shape=(self.length, input_shape[-1]), name="table")

    def call(self, h: tf.Tensor) -> tf.Tensor:
        return h + self.table[tf.newaxis, : tf.shape(h)[1]]


def _body(width: int, blocks: int, length: int, n_out: int, causal: bool) -> keras.Model:
    """Embeddings ``(N, T, width)`` to per-position scores ``(N, T, n_out)``."""
    embedded = keras.Input((None, width))
    h = AddPositions(length)(embedded)
    for _ in range(blocks):
        attended = keras.layers.MultiHeadAttention(4, width // 4)(h, h, use_causal_mask=causal)
        h = keras.layers.LayerNormalization()(h + attended)
        hidden = keras.layers.Dense(2 * width, activation="gelu")(h)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(width)(hidden))
    return keras.Model(embedded, keras.layers.Dense(n_out)(h), name="body")


def build(size: str, causal: bool, length: int) -> tuple[keras.Model, keras.Model]:
    """A tagger (``causal=False``, N_TAGS tags) or a causal language model (VOCABULARY logits):
    the whole model on ids, and its body on embeddings (for timing F and B)."""
    keras.utils.set_random_seed(0)
    width, blocks = SIZES[size]
    body = _body(width, blocks, length, VOCABULARY if causal else N_TAGS, causal)
    ids = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, width, name="embedding")(ids)
    return keras.Model(ids, body(embedded)), body


def _ids(n: int, length: int) -> np.ndarray:
    return np.random.default_rng(1).integers(1, VOCABULARY, size=(n, length)).astype("int32")


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _alternate(runs: dict[str, Callable[[], object]], repeats: int) -> tuple[dict, float]:
    """Median seconds of each run, timed in turn ``repeats`` times after a warm-up of each;
    and the cores other processes took meanwhile."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    load = LoadMeter()
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_seconds(run))
    return {name: statistics.median(values) for name, values in times.items()}, load.stop()


def _forward_backward(body: keras.Model, length: int) -> dict[str, float]:
    """Seconds per point of a forward pass and of a backward pass to the embeddings (one
    scalar), on a compiled batch of BATCH points."""
    points = tf.random.normal((BATCH, length, body.input_shape[-1]), seed=2)

    @tf.function(jit_compile=False)
    def forward(e: tf.Tensor) -> tf.Tensor:
        return body(e)

    @tf.function(jit_compile=False)
    def gradient(e: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(e)
            scalar = tf.nn.log_softmax(body(e), axis=-1)[:, length // 2, 1]
        return tape.gradient(scalar, e)

    times, _ = _alternate({"F": lambda: forward(points), "F+B": lambda: gradient(points)}, 9)
    forward_s = times["F"] / BATCH
    return {"forward_s": forward_s, "backward_s": max(times["F+B"] / BATCH - forward_s, 0.0)}


def _bound(costs: dict[str, float], k: int) -> float:
    f, b = costs["forward_s"], costs["backward_s"]
    return (f + k * b) / (k * (f + b))


#: Builds a case's runs on its first n samples; every call shares the case's explainers.
Runs = Callable[[int], dict[str, Callable[[], object]]]


def tagging_runs(size: str) -> tuple[Runs, keras.Model, int]:
    length, n_samples = TAGGING["length"], TAGGING["n_samples"]
    model, body = build(size, causal=False, length=length)
    explainer = IntegratedGradients(
        model, layer=model.get_layer("embedding"), n_steps=N_STEPS, internal_batch_size=BATCH
    )

    def runs(n: int) -> dict[str, Callable[[], object]]:
        X = _ids(n_samples, length)[:n]
        predicted = np.asarray(model(X)).argmax(axis=-1)  # (N, T)
        targets = np.stack([np.tile(np.arange(length), (n, 1)), predicted], axis=-1)

        def separately() -> None:
            for position in range(length):
                explainer.explain(X, target=targets[:, position])

        return {"one pass": lambda: explainer.explain(X, targets=targets), "separately": separately}

    return runs, body, length


def generation_runs(size: str) -> tuple[Runs, keras.Model, int]:
    prompt, n_samples = GENERATION["prompt"], GENERATION["n_samples"]
    length = prompt + GENERATION["generated"]
    model, body = build(size, causal=True, length=length)
    layer = model.get_layer("embedding")
    scored = keras.Model(model.input, keras.layers.Activation("log_softmax")(model.output))
    row_explainer = IntegratedGradients(
        scored, layer=layer, n_steps=N_STEPS, internal_batch_size=BATCH
    )
    # One explainer for every run, as one would for batch after batch: compiled once.
    generation = GenerationExplainer(model, layer, n_steps=N_STEPS, internal_batch_size=BATCH)
    positions = range(prompt, length)

    def runs(n: int) -> dict[str, Callable[[], object]]:
        ids = _ids(n_samples, length)[:n]

        def rows() -> None:
            for t in positions:
                target = np.stack([np.full(n, t - 1), ids[:, t]], axis=1)
                row_explainer.explain(ids, target=target, baselines=np.zeros_like(ids))

        def prefixes() -> None:
            for t in positions:
                generation.explain(ids[:, : t + 1], t)

        return {
            "one pass": lambda: generation.explain(ids, prompt),
            "separately": rows,
            "prefixes": prefixes,
        }

    return runs, body, length


CASES = {"tagging": tagging_runs, "generation": generation_runs}


def timed(case: str, size: str, repeats: int) -> dict[str, Any]:
    runs, body, length = CASES[case](size)
    n = (TAGGING if case == "tagging" else GENERATION)["n_samples"]
    medians, load = _alternate(runs(n), repeats)
    k = TAGGING["targets"] if case == "tagging" else GENERATION["generated"]
    costs = _forward_backward(body, length)
    goal = (TAGGING if case == "tagging" else GENERATION)["goal"]
    ratio = medians["one pass"] / medians["separately"]
    result = {
        "case": case,
        "size": size,
        "width_blocks": SIZES[size],
        "k": k,
        "seconds": medians,
        "ratio": ratio,
        "goal": goal,
        "goal_met": ratio <= goal,
        "compute_bound": _bound(costs, k),
        **costs,
        "load": load,
    }
    if "prefixes" in medians:
        result["ratio_to_prefixes"] = medians["one pass"] / medians["prefixes"]
    return result


def _peak_in_this_process(case: str, size: str, way: str) -> dict[str, float]:
    """From the model built to the end of the first run, tracing included: a second run finds
    the memory of the first in the allocator's pools, and would show next to no growth."""
    runs, _, _ = CASES[case](size)
    n = (TAGGING if case == "tagging" else GENERATION)["n_samples"]
    measured = runs(n)[way]
    baseline = _status_kib()["VmRSS"]
    reset = _reset_peak()
    measured()
    return {"growth_mib": (_status_kib()["VmHWM"] - baseline) / 1024, "peak_reset": reset}


def peak_memory(case: str, size: str, way: str) -> dict[str, Any]:
    """Peak growth of the resident set while ``way`` runs, in a fresh Python process."""
    command = [sys.executable, os.path.abspath(__file__), "--memory", case, size, way]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(report: dict[str, Any]) -> str:
    rows = []
    for row in report["timings"]:
        seconds = row["seconds"]
        rows.append(
            [
                f"{row['case']}, {row['size']} ({row['width_blocks'][0]} wide, "
                f"{row['width_blocks'][1]} block{'s' if row['width_blocks'][1] > 1 else ''})",
                str(row["k"]),
                f"{seconds['one pass']:.2f}",
                f"{seconds['separately']:.2f}",
                f"{row['ratio']:.2f}",
                f"{row['compute_bound']:.2f}",
                f"{row['ratio_to_prefixes']:.2f}" if "ratio_to_prefixes" in row else "",
                f"<= {row['goal']}: {'met' if row['goal_met'] else 'MISSED'}",
            ]
        )
    lines = _list_table(
        "Every position in one pass against one call per position",
        [
            "model",
            "K",
            "one pass (s)",
            "K calls (s)",
            "ratio",
            "compute-bound ratio",
            "ratio to K prefix runs",
            "target",
        ],
        rows,
    )
    memory_rows = [
        [
            f"{row['case']}, {row['size']}",
            f"{row['one pass']['growth_mib']:.0f}",
            f"{row['separately']['growth_mib']:.0f}",
        ]
        for row in report["memory"]
    ]
    lines += _list_table(
        "Peak memory growth (MiB) of a first run, tracing included",
        ["model", "one pass", "K calls"],
        memory_rows,
    )
    machine = report["machine"]
    loads = [row["load"] for row in report["timings"]]
    lines.append(
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}, {N_STEPS} Gauss-Legendre steps, internal_batch_size {BATCH}; "
        f"other processes kept {min(loads):.2f} to {max(loads):.2f} cores busy during the timed "
        f"runs (load average {report['loadavg']} at the start). Tagging explains "
        f"{TAGGING['n_samples']} sequences of {TAGGING['length']} tokens; generation "
        f"{GENERATION['n_samples']} sequences of {GENERATION['prompt']} prompt and "
        f"{GENERATION['generated']} generated tokens. The compute-bound ratio is "
        "(F + K B) / (K (F + B)) from the measured forward (F) and backward (B) times of one "
        "point."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--output", type=Path, default=RESULTS / "sequences.json")
    parser.add_argument(
        "--memory", nargs=3, metavar=("CASE", "SIZE", "WAY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.memory:  # a child of peak_memory
        print(json.dumps(_peak_in_this_process(*args.memory)))
        return
    with open("/proc/loadavg") as loadavg:
        start_load = " ".join(loadavg.read().split()[:3])
    sizes = args.sizes.split(",")
    report: dict[str, Any] = {"machine": describe(), "loadavg": start_load}
    report["timings"] = [timed(case, size, args.repeats) for case in CASES for size in sizes]
    report["memory"] = [
        {
            "case": case,
            "size": size,
            **{way: peak_memory(case, size, way) for way in ("one pass", "separately")},
        }
        for case in CASES
        for size in sizes
    ]
    write_report(report, args.output, render)


if __name__ == "__main__":
    main()
