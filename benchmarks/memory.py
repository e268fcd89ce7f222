"""Peak resident memory of one ``explain``, measured in a fresh process.

Run by ``run.py`` as ``python benchmarks/memory.py KIND WORKLOAD N``; prints one JSON line. The
child builds the model and the inputs, warms the explainer up on two samples (so tracing is not
counted), reads its resident memory (the baseline), resets the kernel's high-water mark, explains
all N samples and reads the peak again. The growth, peak minus baseline, is what ``explain`` itself
needed; a fresh process per measurement keeps one run's freed memory out of the next's baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np

MIB = 1024 * 1024


def _status_kib() -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) from /proc, in KiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def measure(
    kind: str,
    workload_key: str,
    n_samples: int,
    n_steps: int,
    batch_size: int | str,
    memory_budget: int | None = None,
) -> dict:
    """Build, warm up, and measure the peak RSS of one ``explain`` (in this process).

    ``batch_size`` may be ``"auto"`` (ig_plugin only), with a ``memory_budget`` in bytes or
    None for the default."""
    # Imported here: the parent process only spawns children and needs no TensorFlow for it.
    from timing import explainer, make_case
    from workloads import WORKLOADS

    case = make_case(WORKLOADS[workload_key], n_samples)
    explaining = explainer(kind, case, n_steps, batch_size, memory_budget)
    explaining.explain(case.X[:2], target=case.target[:2])
    baseline = _status_kib()["VmRSS"]
    reset = _reset_peak()
    explanation = explaining.explain(case.X, target=case.target)
    peak = _status_kib()["VmHWM"]
    # What the explanation itself holds and must: X, the baselines and the attributions.
    baselines = explanation.data["baselines"]
    held = [case.X, *(baselines if isinstance(baselines, list) else [baselines])]
    held += list(explanation.attributions)
    arrays_bytes = sum(np.asarray(array).nbytes for array in held)
    return {
        "explainer": kind,
        "workload": workload_key,
        "n_samples": n_samples,
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "growth_mib": (peak - baseline) / 1024,
        "explanation_arrays_mib": arrays_bytes / MIB,
        "growth_beyond_arrays_mib": (peak - baseline) / 1024 - arrays_bytes / MIB,
        # Without the reset the peak may predate explain (then growth is an upper bound).
        "peak_reset": reset,
    }


def measure_in_fresh_process(
    kind: str,
    workload_key: str,
    n_samples: int,
    n_steps: int,
    batch_size: int | str,
    memory_budget: int | None = None,
) -> dict[str, Any]:
    """Run :func:`measure` in a child Python and return its result."""
    command = [sys.executable, os.path.abspath(__file__), kind, workload_key]
    command += [str(n_samples), str(n_steps), str(batch_size)]
    command += [] if memory_budget is None else [str(memory_budget)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    kind, workload_key, n_samples, n_steps, batch_size = sys.argv[1:6]
    budget = int(sys.argv[6]) if len(sys.argv) > 6 else None
    size = batch_size if batch_size == "auto" else int(batch_size)
    result = measure(kind, workload_key, int(n_samples), int(n_steps), size, budget)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
