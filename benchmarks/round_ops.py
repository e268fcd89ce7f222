"""What a small array operation costs in numpy and inside one compiled ``tf.while_loop``.

``n_steps="auto"`` decides each round on the host, in numpy: a few hundred operations on
arrays of a few hundred to a few thousand rows (the open pieces of a group of samples, by
feature). Would that work cost less run inside the compiled call, as a ``tf.while_loop`` over
the rounds? This times the same mix of operations both ways, on ``(rows, features)`` float64
arrays: a gather of rows, a segment sum over sorted owners, an absolute value by ``where``, and
a scaled sum with the input, repeated to ``--ops`` operations per iteration and ``--iterations``
iterations (one ``tf.function`` call holds them all). It reports microseconds per operation,
medians of ``--repeats`` timed calls after one untimed call, and the graph's cost as a multiple
of numpy's.

    python benchmarks/round_ops.py [--repeats 30] [--output results/round_ops.json]

Writes the JSON and an RST table (docs/steps.rst includes it) next to it. About a minute on two
cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from machine import LoadMeter, describe
from report import _list_table, write_report

RESULTS = Path(__file__).parent / "results"
SHAPES = ((1000, 1), (1000, 16), (4000, 64))
OWNERS = 200
OPS_PER_STEP = 4  # gather, segment sum, where, scaled sum


def arrays(shape: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values ``shape``, a row permutation, and sorted owners (every owner has a row)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape)
    rows = rng.permutation(shape[0])
    others = rng.integers(0, OWNERS, shape[0] - OWNERS)
    return values, rows, np.sort(np.concatenate([np.arange(OWNERS), others]))


def numpy_run(values, rows, owners, steps: int, iterations: int) -> np.ndarray:
    starts = np.searchsorted(owners, np.arange(OWNERS))
    result = values
    for _ in range(iterations):
        for _ in range(steps):
            sums = np.add.reduceat(result[rows], starts, axis=0)
            result = np.where(sums > 0.0, sums, -sums)[owners] * 0.5 + values
    return result


def graph_run(steps: int) -> Callable[..., tf.Tensor]:
    @tf.function
    def run(values, rows, owners, iterations):
        def body(i, result):
            for _ in range(steps):
                sums = tf.math.segment_sum(tf.gather(result, rows), owners)
                result = tf.gather(tf.where(sums > 0.0, sums, -sums), owners) * 0.5 + values
            return i + 1, result

        return tf.while_loop(lambda i, _: i < iterations, body, (tf.constant(0), values))[1]

    return run


def _median_seconds(call: Callable[[], Any], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(shape: tuple[int, int], ops: int, iterations: int, repeats: int) -> dict[str, Any]:
    values, rows, owners = arrays(shape)
    steps = max(1, ops // OPS_PER_STEP)
    n_ops = steps * OPS_PER_STEP * iterations
    run = graph_run(steps)
    tensors = [tf.constant(a) for a in (values, rows, owners)]
    same = np.allclose(
        run(*tensors, tf.constant(iterations)).numpy(),
        numpy_run(values, rows, owners, steps, iterations),
    )
    load = LoadMeter()
    numpy_s = _median_seconds(lambda: numpy_run(values, rows, owners, steps, iterations), repeats)
    graph_s = _median_seconds(lambda: run(*tensors, tf.constant(iterations)).numpy(), repeats)
    # One call's fixed cost, to take out of the graph's per-operation figure.
    call_s = _median_seconds(lambda: run(*tensors, tf.constant(0)).numpy(), repeats)
    return {
        "rows": shape[0],
        "features": shape[1],
        "ops": n_ops,
        "same_result": bool(same),
        "numpy_us_per_op": numpy_s / n_ops * 1e6,
        "graph_us_per_op": max(graph_s - call_s, 0.0) / n_ops * 1e6,
        "graph_call_ms": call_s * 1e3,
        "load": load.stop(),
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        [
            f"{row['rows']:,} x {row['features']}",
            f"{row['ops']:,}",
            f"{row['numpy_us_per_op']:.1f}",
            f"{row['graph_us_per_op']:.1f}",
            f"{row['graph_us_per_op'] / row['numpy_us_per_op']:.2f}",
            f"{row['graph_call_ms']:.2f}",
        ]
        for row in report["rows"]
    ]
    lines = _list_table(
        "A small array operation in numpy and inside one compiled tf.while_loop",
        [
            "array (rows x features, float64)",
            "operations per call",
            "numpy (us per operation)",
            "graph (us per operation)",
            "graph / numpy",
            "graph call's own cost (ms)",
        ],
        rows,
    )
    machine = report["machine"]
    loads = [row["load"] for row in report["rows"]]
    lines.append(
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}, numpy {machine['numpy']}; other processes kept "
        f"{min(loads):.2f} to {max(loads):.2f} cores busy. The graph's figure leaves out the "
        "call's own cost (a call of zero iterations)."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--ops", type=int, default=160, help="operations per iteration")
    parser.add_argument("--iterations", type=int, default=6, help="rounds per call")
    parser.add_argument("--output", type=Path, default=RESULTS / "round_ops.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": describe(), "rows": []}
    for shape in SHAPES:
        row = measure(shape, args.ops, args.iterations, args.repeats)
        print(json.dumps(row), flush=True)
        report["rows"].append(row)
    write_report(report, args.output, render)


if __name__ == "__main__":
    main()
