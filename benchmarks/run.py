"""ig_plugin's benchmark suite: speed against alibi and the floor, and peak memory.

    python benchmarks/run.py                      # everything, about 13 minutes
    python benchmarks/run.py --quick              # fewer repeats, smaller memory runs
    python benchmarks/run.py --workloads cnn,mlp --no-memory

Speed: each workload is explained by ig_plugin and by alibi with the same settings
(Gauss-Legendre, 50 steps, the same internal_batch_size), and its floor is timed: the same
gradient evaluations in one compiled ``tf.function`` with no IG around them. After one warm-up
run each (tracing), runs are interleaved and medians reported. Memory: the peak resident memory of
``explain`` on the residual CNN at several N, each in a fresh process, for both explainers.

Prints the tables and writes everything to ``benchmarks/results/latest.json``, and the tables as
reStructuredText to ``benchmarks/results/latest.rst``, which the docs' performance page includes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import LoadMeter, describe
from memory import measure_in_fresh_process
from report import render
from timing import QUICK_RUN_S, RUNNERS, make_case, time_case
from workloads import WORKLOADS

RESULTS = Path(__file__).parent / "results"
MEMORY_WORKLOAD = "resnet"

#: Most seconds ig_plugin may take per second of floor, on every workload.
FLOOR_TARGET = 1.15
#: Least speed-up over alibi (alibi seconds per ig_plugin second), by workload.
ALIBI_TARGETS = {"cnn": 2.5, "resnet": 1.0, "text": 4.0, "mlp": 4.0}


def _sizes(text: str) -> list[int]:
    return [int(size) for size in text.split(",")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller memory runs")
    parser.add_argument("--repeats", type=int, help="timed runs of ig_plugin and the floor (11)")
    parser.add_argument(
        "--alibi-repeats", type=int, help="timed runs of alibi where a run takes over 3 s (3)"
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="internal_batch_size")
    parser.add_argument("--memory-sizes", type=_sizes, help="N of the memory runs (250,1000,2000)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed runs")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    args.workloads = [key.strip() for key in args.workloads.split(",") if key.strip()]
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    # Many runs of the fast two: on a shared machine single runs vary by 15 %.
    args.repeats = args.repeats or (3 if args.quick else 11)
    args.alibi_repeats = args.alibi_repeats or (1 if args.quick else 3)
    args.memory_sizes = args.memory_sizes or ([100, 250, 500] if args.quick else [250, 1000, 2000])
    return args


def speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every chosen workload; print one row as each finishes."""
    repeats = {"ig_plugin": args.repeats, "floor": args.repeats, "alibi": args.alibi_repeats}
    rows = []
    print(_speed_header(), flush=True)
    for key in args.workloads:
        meter = LoadMeter()
        case = make_case(WORKLOADS[key])
        times = time_case(case, RUNNERS, repeats, args.steps, args.batch)
        ours, alibi, floor = (times[kind]["median_s"] for kind in ("ig_plugin", "alibi", "floor"))
        row = {
            "workload": key,
            "title": WORKLOADS[key].title,
            "n_samples": len(case.X),
            "gradient_evaluations": len(case.X) * args.steps,
            "times": times,
            "ig_plugin_over_alibi": ours / alibi,
            "ig_plugin_over_floor": ours / floor,
            "alibi_over_ig_plugin": alibi / ours,
            "floor_target_met": ours / floor <= FLOOR_TARGET,
            "alibi_target": ALIBI_TARGETS[key],
            "alibi_target_met": alibi / ours >= ALIBI_TARGETS[key],
            "other_load_cores": meter.stop(),
        }
        rows.append(row)
        print(_speed_line(row), flush=True)
    return rows


def _speed_header() -> str:
    columns = ("workload", "N", "ig_plugin s", "alibi s", "floor s", "ig/alibi", "ig/floor")
    return "{:<30} {:>6} {:>11} {:>8} {:>8} {:>9} {:>9}  {:<14} {}".format(
        *columns, "targets", "load"
    )


def _speed_line(row: dict[str, Any]) -> str:
    times = row["times"]
    met = "ok" if row["floor_target_met"] and row["alibi_target_met"] else "MISSED"
    return (
        f"{row['title']:<30} {row['n_samples']:>6} {times['ig_plugin']['median_s']:>11.3f} "
        f"{times['alibi']['median_s']:>8.3f} {times['floor']['median_s']:>8.3f} "
        f"{row['ig_plugin_over_alibi']:>9.2f} {row['ig_plugin_over_floor']:>9.2f}  {met:<14} "
        f"{row['other_load_cores']:.2f}"
    )


def memory(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Peak RSS of explain on the residual CNN, per explainer and N, each in a fresh process."""
    rows = []
    print(
        f"\npeak memory of explain, {WORKLOADS[MEMORY_WORKLOAD].title}, MiB "
        "(growth = peak during explain - RSS after model, inputs and a warm-up; arrays = X, "
        "baselines and attributions, which the explanation holds)"
    )
    print(
        f"{'explainer':<10} {'N':>6} {'baseline':>9} {'peak':>9} {'growth':>9} {'arrays':>8} "
        f"{'growth - arrays':>16}"
    )
    for kind in ("ig_plugin", "alibi"):
        for n_samples in args.memory_sizes:
            meter = LoadMeter()
            row = measure_in_fresh_process(kind, MEMORY_WORKLOAD, n_samples, args.steps, args.batch)
            row["other_load_cores"] = meter.stop()
            rows.append(row)
            print(
                f"{kind:<10} {n_samples:>6} {row['baseline_mib']:>9.0f} {row['peak_mib']:>9.0f} "
                f"{row['growth_mib']:>9.0f} {row['explanation_arrays_mib']:>8.1f} "
                f"{row['growth_beyond_arrays_mib']:>16.0f}",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    meter = LoadMeter()
    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "machine": describe(),
        "settings": {
            "method": "gausslegendre",
            "n_steps": args.steps,
            "internal_batch_size": args.batch,
            "repeats": args.repeats,
            "alibi_repeats": args.alibi_repeats,
            "quick_run_s": QUICK_RUN_S,
            "floor_target": FLOOR_TARGET,
            "alibi_targets": ALIBI_TARGETS,
        },
    }
    machine = report["machine"]
    print(f"{machine['cpu']}, {machine['cores']} cores, TensorFlow {machine['tensorflow']}")
    print(
        f"medians of {args.repeats} runs ({args.alibi_repeats} for alibi where a run takes over "
        f"{QUICK_RUN_S:g} s); "
        "load = cores other processes kept busy (or the hypervisor stole) meanwhile\n"
    )
    if not args.no_speed:
        report["speed"] = speed(args)
    if not args.no_memory:
        report["memory"] = memory(args)
    report["other_load_cores"] = meter.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    # The docs' performance page includes this file.
    args.output.with_suffix(".rst").write_text(render(report))
    print(f"\nother processes kept {report['other_load_cores']:.2f} cores busy on average")
    print(f"wrote {args.output} and {args.output.with_suffix('.rst')}")


if __name__ == "__main__":
    main()
