"""Expected Gradients against shap's ``GradientExplainer`` (TensorFlow): time and peak memory.

    make benchmark-expected-gradients      # builds a venv with shap, then runs this (~15 min)
    python benchmarks/expected_gradients.py --quick      # in a venv with ig_plugin and shap

Both explain the same seeded model and inputs for the model's predicted class, with 200 draws
per sample from the same background (100 generated images for workload 2, the residual CNN;
1,000 generated rows for workload 4, the tabular MLP) and the same gradient batch of 200 points
(``internal_batch_size`` for ig_plugin; shap batches one sample's 200 draws at a time), shap
with ``ranked_outputs=1`` so that it explains one class per sample as ig_plugin does. Their
draws differ (each its own generator), so the attributions agree only up to sampling noise: the
tables give their correlation and both completeness gaps,
``|sum(attributions) - (F(x) - mean F(background))|``.

Speed: each explainer is warmed up once (tracing), then the two run in alternation and medians
are reported. Memory: the peak resident memory of one explain, each in a fresh process (see
``memory.py``), at growing N: flat means the growth beyond the explanation's own arrays does not
grow with N.

shap 0.50 and later need NumPy 2, which alibi rules out (numpy < 2); shap 0.49.1 is the newest
that installs beside TensorFlow 2.21 and numpy 1.26 (with numba and llvmlite), which is what
``make benchmark-expected-gradients`` puts in its own venv. Writes
``benchmarks/results/expected_gradients.{json,rst}``; the docs' performance page includes the
table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from machine import LoadMeter, describe
from report import write_report

RESULTS = Path(__file__).parent / "results"
#: shap batches the draws of one sample at a time, so its gradient batches hold at most N_DRAWS
#: points whatever its batch_size; ig_plugin gets the same batch (internal_batch_size).
N_DRAWS, BATCH = 200, 200
#: Per workload: N for the timing runs, the background rows, and N for the memory runs.
SETTINGS: dict[str, dict[str, Any]] = {
    "resnet": {"n": 32, "background": 100, "memory_sizes": [128, 1024, 4096]},
    "mlp": {"n": 2000, "background": 1000, "memory_sizes": [1000, 4000, 16000]},
}
KINDS = ("ig_plugin", "shap")


class Setup:
    """One workload's model, inputs, background and targets (the predicted class)."""

    def __init__(self, workload_key: str, n_samples: int) -> None:
        from workloads import WORKLOADS

        workload = WORKLOADS[workload_key]
        self.model = workload.build()
        self.X = workload.make_inputs(n_samples)
        rows = SETTINGS[workload_key]["background"]
        # Other rows than X's: the background comes from another seed of the same generator.
        self.background = np.random.default_rng(1).random((rows, *self.X.shape[1:]), np.float32)
        if workload_key == "mlp":
            self.background = self.background * 2 - 1
        self.target = np.argmax(self.model.predict(self.X, batch_size=BATCH, verbose=0), axis=1)

    def explain_fn(self, kind: str) -> Any:
        """``explain(X) -> attributions`` (N, *features) for ig_plugin or shap."""
        if kind == "ig_plugin":
            from ig_plugin import ExpectedGradients

            explainer = ExpectedGradients(
                self.model, self.background, n_samples=N_DRAWS, seed=0, internal_batch_size=BATCH
            )
            return lambda X, target: explainer.explain(X, target=target).attributions[0]
        import shap

        gradient_explainer = shap.GradientExplainer(self.model, self.background, batch_size=BATCH)

        def explain(X: np.ndarray, target: np.ndarray) -> np.ndarray:
            values, ranks = gradient_explainer.shap_values(
                X, nsamples=N_DRAWS, ranked_outputs=1, rseed=0
            )
            # ranked_outputs=1 explains the largest output: the predicted class, as ig_plugin's.
            if not np.array_equal(np.asarray(ranks)[:, 0], target):
                raise RuntimeError("shap explained another class than the predicted one")
            return np.asarray(values).reshape(X.shape)

        return explain


def _seconds(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def time_workload(workload_key: str, repeats: int) -> dict[str, Any]:
    """Warm up, then time ig_plugin and shap in alternation; completeness gaps and agreement."""
    setup = Setup(workload_key, SETTINGS[workload_key]["n"])
    explain = {kind: setup.explain_fn(kind) for kind in KINDS}
    for kind in KINDS:
        explain[kind](setup.X[:2], setup.target[:2])  # tracing
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    attributions: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for kind in KINDS:

            def run(kind: str = kind) -> None:
                attributions[kind] = explain[kind](setup.X, setup.target)

            times[kind].append(_seconds(run))
    rows = np.arange(len(setup.X))
    f_x = setup.model.predict(setup.X, batch_size=BATCH, verbose=0)[rows, setup.target]
    f_background = setup.model.predict(setup.background, batch_size=BATCH, verbose=0).mean(0)
    change = f_x.astype(np.float64) - f_background[setup.target]
    gaps = {
        kind: float(np.mean(np.abs(a.reshape(len(a), -1).sum(1) - change)))
        for kind, a in attributions.items()
    }
    first, second = (attributions[kind].ravel() for kind in KINDS)
    return {
        "workload": workload_key,
        "n_samples": len(setup.X),
        "background_rows": len(setup.background),
        "median_s": {kind: statistics.median(values) for kind, values in times.items()},
        "runs_s": times,
        "mean_abs_completeness_gap": gaps,
        "mean_abs_output_change": float(np.mean(np.abs(change))),
        "correlation": float(np.corrcoef(first, second)[0, 1]),
    }


# --- memory, in fresh processes ---------------------------------------------------------------


def measure_memory(kind: str, workload_key: str, n_samples: int) -> dict[str, Any]:
    """In this process: build, warm up on two samples, then the peak RSS of one explain."""
    from memory import _reset_peak, _status_kib

    setup = Setup(workload_key, n_samples)
    explain = setup.explain_fn(kind)
    explain(setup.X[:2], setup.target[:2])
    baseline = _status_kib()["VmRSS"]
    reset = _reset_peak()
    attributions = explain(setup.X, setup.target)
    peak = _status_kib()["VmHWM"]
    arrays_mib = (setup.X.nbytes + attributions.nbytes) / 2**20
    return {
        "explainer": kind,
        "workload": workload_key,
        "n_samples": n_samples,
        "growth_mib": (peak - baseline) / 1024,
        "explanation_arrays_mib": arrays_mib,
        "growth_beyond_arrays_mib": (peak - baseline) / 1024 - arrays_mib,
        "peak_reset": reset,
    }


def memory_in_fresh_process(kind: str, workload_key: str, n_samples: int) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child", kind, workload_key]
    command.append(str(n_samples))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- report -------------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    """The tables as reStructuredText, for the docs' performance page."""
    machine = results["machine"]
    lines = [
        f"Measured on {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; "
        f"TensorFlow {machine.get('tensorflow', '?')}, shap {machine.get('shap', '?')}. Command: "
        f"``{results['command']}``. {N_DRAWS} draws per sample, gradient batches of {BATCH}; "
        f"medians of {results['repeats']} runs. Other processes kept "
        f"{results['busy_cores']:.2f} cores busy on average.",
        "",
        ".. list-table:: Expected Gradients: seconds per explain",
        "   :header-rows: 1",
        "",
        "   * - workload",
        "     - N",
        "     - ig_plugin (s)",
        "     - shap (s)",
        "     - speed-up over shap",
        "     - completeness gap, ig_plugin / shap",
        "     - correlation",
    ]
    for row in results["speed"]:
        median = row["median_s"]
        gap = row["mean_abs_completeness_gap"]
        lines += [
            f"   * - {row['workload']}",
            f"     - {row['n_samples']:,}",
            f"     - {median['ig_plugin']:.3f}",
            f"     - {median['shap']:.3f}",
            f"     - {median['shap'] / median['ig_plugin']:.1f}x",
            f"     - {gap['ig_plugin']:.1e} / {gap['shap']:.1e}",
            f"     - {row['correlation']:.3f}",
        ]
    lines += [
        "",
        ".. list-table:: Expected Gradients: peak memory of one explain (fresh processes)",
        "   :header-rows: 1",
        "",
        "   * - workload",
        "     - explainer",
        "     - N",
        "     - growth (MiB)",
        "     - X and attributions (MiB)",
        "     - growth beyond them (MiB)",
    ]
    for row in results["memory"]:
        lines += [
            f"   * - {row['workload']}",
            f"     - {row['explainer']}",
            f"     - {row['n_samples']:,}",
            f"     - {row['growth_mib']:.0f}",
            f"     - {row['explanation_arrays_mib']:.0f}",
            f"     - {row['growth_beyond_arrays_mib']:.0f}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, workload_key, n_samples = sys.argv[2:5]
        print(json.dumps(measure_memory(kind, workload_key, int(n_samples))))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="resnet,mlp")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats, the smallest memory N")
    parser.add_argument("--output", type=Path, default=RESULTS / "expected_gradients.json")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    workloads = args.workloads.split(",")
    results: dict[str, Any] = {
        "command": "python benchmarks/expected_gradients.py" + (" --quick" if args.quick else ""),
        "repeats": repeats,
        "speed": [],
        "memory": [],
    }
    load = LoadMeter()
    for workload_key in workloads:
        row = time_workload(workload_key, repeats)
        results["speed"].append(row)
        print(json.dumps(row), flush=True)
        sizes = SETTINGS[workload_key]["memory_sizes"][: 1 if args.quick else None]
        for n_samples in sizes:
            for kind in KINDS:
                memory = memory_in_fresh_process(kind, workload_key, n_samples)
                results["memory"].append(memory)
                print(json.dumps(memory), flush=True)
    results["busy_cores"] = load.stop()
    results["machine"] = {**describe(), "shap": metadata.version("shap")}
    write_report(results, args.output, render)


if __name__ == "__main__":
    main()
