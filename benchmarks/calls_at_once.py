"""One ``explain`` call at a time against two at once, as ``ig-plugin explain`` runs its batches.

Every workload of the speed benchmark, 256 rows per call, Gauss-Legendre with 50 steps and 500
path points per gradient batch (the settings of ``benchmarks/batch.py``), target 0; the text
model attributes to its embedding layer. Both ways explain the same rows with the same explainer
through :class:`~ig_plugin._batch.overlap.CallsAtOnce`, alternating within each repeat so that
a change in the machine's load hits both; each figure is the median over the repeats, after a
first pass that traces.

    python benchmarks/calls_at_once.py [--repeats 3] [--workloads cnn,resnet,text,mlp]

Prints milliseconds per row, the process's CPU share (CPU seconds over wall seconds; 1.0 is one
core busy) and the ratio of two calls at once over one; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import LoadMeter, describe
from workloads import WORKLOADS

from ig_plugin import IntegratedGradients
from ig_plugin._batch.overlap import CallsAtOnce

ROWS_PER_CALL = 256
INTERNAL_BATCH_SIZE = 500
#: Rows explained per pass, per workload: a few seconds each on two cores.
ROWS = {"cnn": 2048, "resnet": 1024, "text": 4096, "mlp": 100_000}


def measure(key: str, repeats: int) -> str:
    """One workload's line: each way's ms per row and CPU share, and their ratio."""
    workload = WORKLOADS[key]
    model = workload.build()
    layer = {"layer": workload.layer(model)} if workload.layer else {}
    explainer = IntegratedGradients(
        model, n_steps=50, internal_batch_size=INTERNAL_BATCH_SIZE, **layer
    )
    X = workload.make_inputs(ROWS[key])
    pieces = [X[first : first + ROWS_PER_CALL] for first in range(0, len(X), ROWS_PER_CALL)]

    def explain(rows):
        return explainer.explain(rows, target=0)

    ways = {1: CallsAtOnce(1), 2: CallsAtOnce(2)}

    def timed(calls: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in ways[calls].map(explain, pieces):
            pass
        wall = time.perf_counter() - start
        return wall, (time.process_time() - cpu) / wall

    timed(2)  # traces, in both threads
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(repeats):
        for calls in runs:
            runs[calls].append(timed(calls))
    ms = {c: statistics.median(w for w, _ in r) * 1000 / len(X) for c, r in runs.items()}
    share = {c: statistics.median(s for _, s in r) for c, r in runs.items()}
    return (
        f"{workload.title}: one call at a time {ms[1]:.3f} ms/row (CPU {share[1]:.2f} cores), "
        f"two at once {ms[2]:.3f} ms/row (CPU {share[2]:.2f} cores): {ms[2] / ms[1]:.2f}x"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(ROWS))
    args = parser.parse_args(argv)
    machine = describe()
    meter = LoadMeter()
    print(f"{machine['cpu']} ({machine['cores']} cores), TensorFlow {machine['tensorflow']}")
    for key in args.workloads.split(","):
        print(measure(key, args.repeats), flush=True)
    print(f"other processes: {meter.stop():.2f} cores")


if __name__ == "__main__":
    main()
