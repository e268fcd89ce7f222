"""What a new process pays before its explanations run at their usual speed.

Each of the four workloads, each run in a fresh Python process, in four parts: importing
ig_plugin's explainers (TensorFlow, Keras and alibi with them), loading the saved model, the
first ``explain`` (tracing the compiled passes; ``IntegratedGradients``' defaults, the
workload's layer, the predicted class as target) and a second ``explain`` of the same samples.
The first minus the second is the one-off cost of the first call: what a command line run, a
server's warm-up or each Ray actor pays once. The runs go round-robin over the workloads, and
medians are reported.

    python benchmarks/first_explain.py [--repeats 5] [--samples 8] [--output FILE.json]

Prints the table; with ``--output`` also writes it as JSON and, beside it, as RST. The children
import ig_plugin as this process would: to time another checkout, put it first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import LoadMeter, describe
from report import write_report

PARTS = ("import", "load", "first explain", "second explain")


def child(workload_key: str, model_file: str, n_samples: int) -> None:
    """Time the parts in this (fresh) process and print them as JSON."""
    start = time.perf_counter()
    import numpy as np
    import tensorflow  # noqa: F401

    import ig_plugin
    from ig_plugin import IntegratedGradients  # TensorFlow, Keras and alibi
    from ig_plugin._model.loading import load_model

    imported = time.perf_counter()
    model = load_model(model_file)
    loaded = time.perf_counter()
    from workloads import WORKLOADS

    workload = WORKLOADS[workload_key]
    X = workload.make_inputs(n_samples)
    layer = None if workload.layer is None else workload.layer(model)
    # The predicted class: the model's output is read within explain, so no pass runs before it.
    by_class = functools.partial(np.argmax, axis=1)
    explainer = IntegratedGradients(model, layer=layer, target_fn=by_class)
    made = time.perf_counter()
    explainer.explain(X)
    first = time.perf_counter()
    explainer.explain(X)
    second = time.perf_counter()
    seconds = [imported - start, loaded - imported, first - made, second - first]
    timed = dict(zip(PARTS, seconds, strict=True))
    print(json.dumps({"package": os.path.dirname(ig_plugin.__file__), **timed}))


def measure(
    repeats: int, n_samples: int, folder: Path
) -> tuple[dict[str, dict[str, list[float]]], str]:
    """Seconds of each part per run, by workload title, and the folder ig_plugin was imported
    from."""
    from workloads import WORKLOADS

    runs: dict[str, dict[str, list[float]]] = {
        w.title: {p: [] for p in PARTS} for w in WORKLOADS.values()
    }
    for workload in WORKLOADS.values():
        workload.build().save(folder / f"{workload.key}.keras")
    for _ in range(repeats):
        for workload in WORKLOADS.values():
            model_file = str(folder / f"{workload.key}.keras")
            command = [
                sys.executable,
                __file__,
                "--child",
                workload.key,
                model_file,
                str(n_samples),
            ]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            timed = json.loads(done.stdout.splitlines()[-1])
            package = timed.pop("package")
            for part, seconds in timed.items():
                runs[workload.title][part].append(seconds)
    return runs, package


def render(report: dict) -> str:
    machine = report["machine"]
    repeats = report["repeats"]
    runs = f"medians of {repeats} fresh processes" if repeats > 1 else "one fresh process"
    lines = [
        f"Measured on {machine['cpu']} ({machine['cores']} cores), TensorFlow "
        f"{machine['tensorflow']}. {report['samples']} samples per ``explain``; {runs} per "
        "workload, in seconds (range in brackets). "
        f"Other processes kept {report['other_load_cores']:.2f} cores busy on average.",
        "",
        ".. list-table:: A new process's first explain",
        "   :header-rows: 1",
        "",
        "   * - workload",
        *(f"     - {part}" for part in PARTS),
        "     - first minus second",
    ]
    for title, parts in report["medians"].items():
        lines.append(f"   * - {title}")
        for part in PARTS:
            low, high = report["ranges"][title][part]
            lines.append(f"     - {parts[part]:.2f} ({low:.2f} to {high:.2f})")
        lines.append(f"     - {parts['first explain'] - parts['second explain']:.2f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--output", type=Path, help="a JSON file; the RST goes beside it")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    meter = LoadMeter()
    with tempfile.TemporaryDirectory() as folder:
        runs, package = measure(args.repeats, args.samples, Path(folder))
    report = {
        "command": "python benchmarks/first_explain.py " + " ".join(argv or sys.argv[1:]),
        "machine": describe(),
        "ig_plugin_imported_from": package,
        "other_load_cores": meter.stop(),
        "repeats": args.repeats,
        "samples": args.samples,
        "medians": {
            t: {p: statistics.median(v) for p, v in parts.items()} for t, parts in runs.items()
        },
        "ranges": {t: {p: (min(v), max(v)) for p, v in parts.items()} for t, parts in runs.items()},
        "runs": runs,
    }
    if args.output:
        write_report(report, args.output, render)
    else:
        print(render(report))


if __name__ == "__main__":
    main()
