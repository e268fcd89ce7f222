"""The ``ig-plugin explain`` command on workload 4 (tabular MLP): rows/s without Ray, with Ray and
1 actor, with 2 actors; and the peak memory of each Ray actor as the dataset grows.

    python benchmarks/batch.py                     # 9 to 25 minutes on 2 cores
    python benchmarks/batch.py --sizes 2000,5000 --memory-sizes 2000,5000   # a quick look

Every run is a fresh ``python -m ig_plugin explain`` process, timed from start to exit: what a
user waits for, Python, TensorFlow and (with ``--ray``) a new local Ray cluster included. The
runs go round-robin over the modes so a change in the machine's load hits them alike; medians
are reported. Beside the end-to-end rate, the marginal rate between the smallest and the largest
size, ``(N_large - N_small) / (t_large - t_small)``, is the throughput once everything has
started: what a long job sees.

An actor's peak memory is its process's VmHWM (peak resident set) in /proc, read every 0.1 s
while the command runs and kept at its largest; VmHWM only grows, so the last read before the
actor exits holds its peak. Flat memory means the peak at the largest N is that at the smallest.

Prints the tables and the ratios against the targets; writes ``benchmarks/results/batch.json``
and ``benchmarks/results/batch.rst`` (which the docs' datasets page includes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from machine import LoadMeter, describe
from workloads import WORKLOADS

from ig_plugin._batch.worker import CheckedBatchExplainer

RESULTS = Path(__file__).parent / "results"
WORKLOAD = "mlp"
#: The explainer's settings: those of the speed benchmark (benchmarks/run.py).
INTERNAL_BATCH_SIZE = 500
#: Most seconds per row Ray with one actor may take, once started, per second of the plain run.
RAY_OVERHEAD_TARGET = 1.15
#: Most seconds Ray may take end to end at the largest N, per second of the plain run.
END_TO_END_TARGET = 1.5
#: Most growth of an actor's peak memory from the smallest to the largest N.
MEMORY_FLAT_TARGET = 1.1
#: Cores kept busy by other processes above which the tables say the figures are rough.
BUSY_CORES = 0.5
#: The process title Ray gives the explaining actors (the command's worker on Ray).
ACTOR_TITLE = f"MapBatches({CheckedBatchExplainer.__name__})".encode()
MODES = {"plain": [], "ray, 1 actor": ["--ray", "--actors", "1"]}
MODES["ray, 2 actors"] = ["--ray", "--actors", "2"]


class ActorMemory:
    """The largest VmHWM of every Ray actor process seen while it runs, in MiB, by pid."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ActorMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    self._read(int(entry.name))

    def _read(self, pid: int) -> None:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if ACTOR_TITLE not in cmdline.read():
                    return
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) / 1024
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)
        except OSError:  # the process ended meanwhile
            pass


def run_command(model: Path, data: Path, output: Path, mode: list[str]) -> dict[str, Any]:
    """One timed ``ig-plugin explain`` in a fresh process: seconds, its own peak, actor peaks."""
    command = [
        sys.executable, "-m", "ig_plugin", "explain", str(model), str(data), "-o", str(output),
        "--internal-batch-size", str(INTERNAL_BATCH_SIZE), "--no-progress", *mode,
    ]  # fmt: skip
    with ActorMemory() as actors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr}")
    return {
        "seconds": seconds,
        "process_peak_mib": usage.ru_maxrss / 1024,  # the command's own process (KiB on Linux)
        "actor_peaks_mib": sorted(actors.peaks.values()),
    }


#: A local Ray (as the command starts it) running one Ray Data actor of two CPUs over one row;
#: ``{imports}`` is what the actor imports when it is built.
RAY_DATA_ACTOR = """
import ray, ray.data
ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
         log_to_driver=False)
ray.data.DataContext.get_current().enable_progress_bars = False
class Actor:
    def __init__(self):
        {imports}
    def __call__(self, batch):
        return batch
pool = ray.data.ActorPoolStrategy(size=1)
# Rows already in memory, as the command sends them: a read task would wait for a CPU.
ray.data.from_items([0]).map_batches(Actor, compute=pool, num_cpus=2).materialize()
ray.shutdown()
"""

#: Fixed costs, each timed in a fresh process: what every run of the command pays before (and
#: after) its rows, without and with Ray. The last two take apart what Ray adds: Ray Data's
#: start of an actor pool, then the actor's import of the explainer (TensorFlow, Keras, alibi),
#: which the plain run pays once in its own process and a Ray run once more in every actor.
STARTUP_COMMANDS = {
    # ``import ig_plugin`` alone no longer imports TensorFlow (the import is lazy): time what
    # every explain pays, ig_plugin and TensorFlow both.
    "python + import ig_plugin and TensorFlow": ["-c", "import ig_plugin, tensorflow"],
    "python + import ray, start and stop a local Ray": [
        "-c",
        "import ray; ray.init(address='local', num_cpus=2, include_dashboard=False, "
        "logging_level='ERROR'); ray.shutdown()",
    ],
    "the same, and one Ray Data actor that does nothing": [
        "-c",
        RAY_DATA_ACTOR.format(imports="pass"),
    ],
    "the same, the actor importing ig_plugin's explainer": [
        "-c",
        RAY_DATA_ACTOR.format(imports="import ig_plugin.integrated_gradients, tensorflow"),
    ],
}


def time_startup(repeats: int) -> dict[str, float]:
    """Median seconds of each of :data:`STARTUP_COMMANDS`."""
    medians = {}
    for name, arguments in STARTUP_COMMANDS.items():
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, *arguments], check=True, capture_output=True)
            runs.append(time.perf_counter() - start)
        medians[name] = statistics.median(runs)
        print(f"startup: {name}: {medians[name]:.1f} s", flush=True)
    return medians


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="5000,20000,200000", help="N for the timed runs")
    parser.add_argument("--memory-sizes", default="5000,50000", help="N for actor memory (1 actor)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mode at each N")
    parser.add_argument("--output", type=Path, default=RESULTS / "batch.json")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .rst from the .json (no runs)"
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    workload = WORKLOADS[WORKLOAD]
    model = folder / "model.keras"
    workload.build().save(model)
    sizes = sorted({int(s) for s in args.sizes.split(",")} | {20_000})
    memory_sizes = sorted(int(s) for s in args.memory_sizes.split(","))
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {mode: {} for mode in MODES}
    for n_rows in sorted(set(sizes) | set(memory_sizes)):
        data = folder / f"data-{n_rows}.npy"
        np.save(data, workload.make_inputs(n_rows))
        modes = MODES if n_rows in sizes else {"ray, 1 actor": MODES["ray, 1 actor"]}
        for repeat in range(args.repeats if n_rows in sizes else 1):
            for mode, flags in modes.items():  # round-robin: load changes hit every mode
                result = run_command(model, data, folder / "out.npz", flags)
                runs[mode].setdefault(n_rows, []).append(result)
                print(
                    f"N={n_rows:>6} {mode:<14} run {repeat + 1}: {result['seconds']:6.1f} s, "
                    f"{n_rows / result['seconds']:7.0f} rows/s, actor peaks "
                    f"{[round(p) for p in result['actor_peaks_mib']]} MiB",
                    flush=True,
                )
    return {**summarise(runs, sizes, memory_sizes), "startup_s": time_startup(args.repeats)}


def summarise(
    runs: dict[str, dict[int, list[dict[str, Any]]]], sizes: list[int], memory_sizes: list[int]
) -> dict[str, Any]:
    speed = []
    for mode, by_size in runs.items():
        medians = {
            n: statistics.median(r["seconds"] for r in by_size[n]) for n in sizes if n in by_size
        }
        small, large = min(medians), max(medians)
        speed.append(
            {
                "mode": mode,
                "seconds": medians,
                "rows_per_s": {n: n / s for n, s in medians.items()},
                "marginal_rows_per_s": (large - small) / (medians[large] - medians[small]),
                "runs_s": {n: [r["seconds"] for r in by_size[n]] for n in medians},
            }
        )
    plain, one_actor = speed[0], speed[1]
    overhead = one_actor["seconds"][20_000] / plain["seconds"][20_000]
    marginal = plain["marginal_rows_per_s"] / one_actor["marginal_rows_per_s"]
    one_actor_runs = runs["ray, 1 actor"]
    if not all(r["actor_peaks_mib"] for n in memory_sizes for r in one_actor_runs[n]):
        raise RuntimeError(f"A run with Ray had no process titled {ACTOR_TITLE!r}.")
    memory = {n: max(max(r["actor_peaks_mib"]) for r in one_actor_runs[n]) for n in memory_sizes}
    growth = memory[max(memory_sizes)] / memory[min(memory_sizes)]
    spread = max(
        max(times) / min(times) - 1 for entry in speed for times in entry["runs_s"].values()
    )
    return {
        "speed": speed,
        "spread": spread,
        "ray_1_actor_over_plain_20000": overhead,
        "ray_1_actor_over_plain_marginal": marginal,
        "ray_overhead_target": RAY_OVERHEAD_TARGET,
        "end_to_end_target": END_TO_END_TARGET,
        "actor_peak_mib": memory,
        "actor_peak_growth": growth,
        "memory_flat_target": MEMORY_FLAT_TARGET,
    }


def render(report: dict[str, Any]) -> str:
    """The results as reStructuredText tables, for the docs."""
    settings = report["settings"]
    machine = report["machine"]
    sizes = sorted({int(n) for entry in report["speed"] for n in entry["seconds"]})
    lines = [
        f"Measured on {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"TensorFlow {machine['tensorflow']}, Ray {settings['ray']}. Workload 4 (tabular MLP, "
        f"20 features), Gauss-Legendre, 50 steps, ``--internal-batch-size "
        f"{settings['internal_batch_size']}``, ``--batch-size 256``; each figure is the median "
        f"of {settings['repeats']} fresh ``ig-plugin explain`` processes, timed from start to "
        f"exit. Other processes kept {report['other_load_cores']:.2f} cores busy on average "
        "during the run."
        + (
            " That is a busy machine: the runs of one mode at one N differ by up to "
            f"{report['spread']:.0%}, so read the ratios as rough."
            if report["other_load_cores"] > BUSY_CORES
            else ""
        ),
        "",
        ".. list-table:: ig-plugin explain: rows per second",
        "   :header-rows: 1",
        "",
        "   * - mode",
        *[f"     - N = {n:,}" for n in sizes],
        "     - marginal (once started)",
    ]
    for entry in report["speed"]:
        lines.append(f"   * - {entry['mode']}")
        for n in sizes:
            rate = entry["rows_per_s"].get(str(n), entry["rows_per_s"].get(n))
            seconds = entry["seconds"].get(str(n), entry["seconds"].get(n))
            lines.append(f"     - {rate:,.0f} ({seconds:.1f} s)")
        lines.append(f"     - {entry['marginal_rows_per_s']:,.0f}")
    memory = report["actor_peak_mib"]
    lines += [
        "",
        f"Ray with 1 actor over the plain run: {report['ray_1_actor_over_plain_20000']:.2f}x "
        f"at N = 20,000 end to end, {report['ray_1_actor_over_plain_marginal']:.2f}x in "
        f"marginal throughput (target <= {report['ray_overhead_target']}x). Peak memory of the "
        "actor: "
        + ", ".join(f"{float(v):,.0f} MiB at N = {int(n):,}" for n, v in memory.items())
        + f" ({report['actor_peak_growth']:.2f}x; flat means <= {report['memory_flat_target']}x).",
        "",
        *_end_to_end(report, sizes[-1]),
        "Fixed costs, each in a fresh process: "
        + "; ".join(f"{name}: {seconds:.1f} s" for name, seconds in report["startup_s"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def _end_to_end(report: dict[str, Any], n_rows: int) -> list[str]:
    """A paragraph: each Ray mode's time end to end at ``n_rows`` over the plain run's, against
    the target (none for a report written before the target was)."""
    if "end_to_end_target" not in report:
        return []

    def seconds(entry: dict[str, Any]) -> float:
        return float(entry["seconds"].get(str(n_rows), entry["seconds"].get(n_rows)))

    plain, *on_ray = report["speed"]
    ratios = ", ".join(f"{e['mode']} {seconds(e) / seconds(plain):.2f}x" for e in on_ray)
    return [
        f"End to end at N = {n_rows:,}, over the plain run: {ratios} "
        f"(target <= {report['end_to_end_target']}x).",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        report = json.loads(args.output.read_text())
        args.output.with_suffix(".rst").write_text(render(report))
        return
    from importlib import metadata

    meter = LoadMeter()
    with tempfile.TemporaryDirectory() as folder:
        results = measure(args, Path(folder))
    report = {
        "command": "python benchmarks/batch.py " + " ".join(argv or sys.argv[1:]),
        "machine": describe(),
        "settings": {
            "workload": WORKLOAD,
            "internal_batch_size": INTERNAL_BATCH_SIZE,
            "repeats": args.repeats,
            "ray": metadata.version("ray"),
        },
        **results,
        "other_load_cores": meter.stop(),
    }
    report = json.loads(json.dumps(report))  # int keys become strings, as in the file
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    table = render(report)
    args.output.with_suffix(".rst").write_text(table)
    print()
    print(table)


if __name__ == "__main__":
    main()
