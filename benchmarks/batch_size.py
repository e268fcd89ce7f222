"""``internal_batch_size="auto"`` against a sweep of fixed sizes, on the four workloads.

For each workload (``workloads.py``, with the rows of ``SAMPLES``): the time
of ``explain(X, target=...)`` with every fixed ``internal_batch_size`` of the sweep and with
``"auto"`` (default budget), medians of runs taken in alternation (every other round in reverse
order). The best fixed size of the sweep is then timed against auto once more, the two in
alternation for ``--duel-repeats`` rounds: the best of nine medians is the luckiest of nine
noisy figures, so the throughput of auto over the best fixed size (target: at least 0.9) is taken
from these fresh runs. Each workload runs with enough rows that one explain takes about a tenth
of a second or more (``--samples``). Then the
peak resident memory that one ``explain`` adds, in a fresh process (``memory.py``), with
``"auto"`` under an explicit ``--budget-mib`` budget: it must stay within the budget (beyond
the arrays the explanation holds).

    python benchmarks/batch_size.py [--repeats 5] [--duel-repeats 15] [--sizes 16,32,...,4096]
        [--budget-mib 64] [--workloads cnn,resnet,text,mlp] [--output results/batch_size.json]

Writes the JSON and an RST table next to it. Not in CI (about ten minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from machine import LoadMeter, describe
from memory import measure_in_fresh_process
from report import _list_table, write_report
from timing import explainer, make_case
from workloads import WORKLOADS

RESULTS = Path(__file__).parent / "results"
SIZES = tuple(2**k for k in range(4, 13))  # 16 .. 4096
N_STEPS = 50
MIB = 1024 * 1024
#: Rows per workload: enough that one explain takes a tenth of a second or more on two cores.
SAMPLES = {"cnn": 100, "resnet": 96, "text": 200, "mlp": 6_000}


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _alternating(runners: dict[Any, Any], repeats: int) -> dict[Any, list[float]]:
    """Each runner's times over ``repeats`` rounds, every other round in reverse order: the
    runner after a large batch pays for the memory it freed."""
    times: dict[Any, list[float]] = {key: [] for key in runners}
    for repeat in range(repeats):
        order = list(runners.items())
        for key, run in order if repeat % 2 else order[::-1]:
            times[key].append(_seconds(run))
    return times


def sweep(
    key: str, n_samples: int, sizes: tuple[int, ...], repeats: int, duel_repeats: int
) -> dict[str, Any]:
    case = make_case(WORKLOADS[key], n_samples)
    settings: list[int | str] = [*sizes, "auto"]
    explainers = {size: explainer("ig_plugin", case, N_STEPS, size) for size in settings}
    for each in explainers.values():  # trace first
        each.explain(case.X[:2], target=case.target[:2])
    runners = {
        size: (lambda e=each: e.explain(case.X, target=case.target))
        for size, each in explainers.items()
    }
    load = LoadMeter()
    times = _alternating(runners, repeats)
    medians = {str(size): statistics.median(values) for size, values in times.items()}
    fastest = {str(size): min(values) for size, values in times.items()}
    fixed = {size: medians[str(size)] for size in sizes}
    best = min(fixed, key=fixed.__getitem__)
    # Other processes' load comes in bursts longer than a run: the fastest run of each size
    # is the least disturbed, and its ratio the steadier one.
    best_fastest = min(sizes, key=lambda size: fastest[str(size)])
    duel = _alternating({"best": runners[best], "auto": runners["auto"]}, duel_repeats)
    ratio = statistics.median(duel["best"]) / statistics.median(duel["auto"])
    others = load.stop()
    return {
        "workload": WORKLOADS[key].title,
        "n_samples": n_samples,
        "medians_s": medians,
        "fastest_s": fastest,
        "best_fixed_fastest": best_fastest,
        "throughput_auto_over_best_fastest": fastest[str(best_fastest)] / fastest["auto"],
        "best_fixed": best,
        "duel_medians_s": {name: statistics.median(values) for name, values in duel.items()},
        "auto_points": auto_points(explainers["auto"], case),
        "throughput_auto_over_best": ratio,
        "target_met": ratio >= 0.9,
        "load": others,
    }


def auto_points(explaining: Any, case: Any) -> int:
    """The path points per gradient batch that "auto" chooses for this case (as its explain
    does: the cost of a point estimated from the model, a point being a row of the layer's
    values with a layer)."""
    request = explaining._request(explaining._bind(case.X[:1], target=case.target[:1]))
    compiled = explaining._compiled_model()
    cost = compiled.point_cost(request.inputs.arrays, request.call, request.kwargs)
    if case.layer is not None:
        _, ends = compiled.path_ends(
            request.inputs.arrays,
            tuple(a * 0 for a in request.inputs.arrays),
            request.kwargs,
            1,
            request.call,
        )
        cost = replace(cost, point_bytes=sum(a[:1].nbytes for a in ends.ends))
    return int(explaining._batching.gradient_points(cost))


def peak_memory(key: str, n_samples: int, budget: int) -> dict[str, Any]:
    result = measure_in_fresh_process("ig_plugin", key, n_samples, N_STEPS, "auto", budget)
    growth = result["growth_beyond_arrays_mib"] * MIB
    return {**result, "budget_mib": budget / MIB, "within_budget": growth <= budget}


def render(report: dict[str, Any]) -> str:
    rows = []
    for row in report["sweep"]:
        memory = report["memory"][row["workload"]]
        rows.append(
            [
                row["workload"].replace(".", "\\.", 1),
                f"{row['n_samples']:,}",
                f"{row['best_fixed']} ({row['duel_medians_s']['best']:.3f} s)",
                f"{row['auto_points']:,} ({row['duel_medians_s']['auto']:.3f} s)",
                f"{row['throughput_auto_over_best']:.2f}",
                f"{row['best_fixed_fastest']}: {row['throughput_auto_over_best_fastest']:.2f}",
                "met" if row["target_met"] else "MISSED",
                f"{memory['growth_beyond_arrays_mib']:.1f} / {memory['budget_mib']:.0f}",
                "yes" if memory["within_budget"] else "NO",
                f"{row['load']:.2f}",
            ]
        )
    lines = _list_table(
        'internal_batch_size="auto" against the best fixed size',
        [
            "workload",
            "N",
            "best fixed size (time)",
            "auto: points per batch (time)",
            "throughput auto / best",
            "fastest runs: best size, auto / best",
            "target >= 0.9",
            "peak growth / budget (MiB)",
            "within budget",
            "other load (cores)",
        ],
        rows,
    )
    sizes = ", ".join(str(s) for s in report["settings"]["sizes"])
    machine = report["machine"]
    lines.append(
        f"Fixed sizes swept: {sizes}; {N_STEPS} Gauss-Legendre steps, medians of "
        f"{report['settings']['repeats']} runs in alternation; then the best fixed size and auto "
        f"again, medians of {report['settings']['duel_repeats']} runs in alternation (the times "
        'and the ratio shown). "auto" used its default budget for the times; the peak memory was '
        "measured in a fresh process with auto under the "
        "budget shown (growth beyond the arrays the explanation holds). Measured on "
        f"{machine['cpu']} ({machine['cores']} cores), TensorFlow {machine['tensorflow']}; "
        "the last column is the cores other processes kept busy."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--sizes", type=lambda s: tuple(int(v) for v in s.split(",")), default=SIZES
    )
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=list(WORKLOADS))
    parser.add_argument("--duel-repeats", type=int, default=15)
    parser.add_argument(
        "--samples",
        type=lambda s: dict((k, int(v)) for k, v in (p.split("=") for p in s.split(","))),
        default={},
        help="rows per workload, e.g. mlp=2000 (defaults: SAMPLES)",
    )
    parser.add_argument("--budget-mib", type=int, default=64)
    parser.add_argument("--output", type=Path, default=RESULTS / "batch_size.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "machine": describe(),
        "settings": {
            "sizes": list(args.sizes),
            "repeats": args.repeats,
            "duel_repeats": args.duel_repeats,
            "n_steps": N_STEPS,
        },
        "sweep": [],
        "memory": {},
    }
    for key in args.workloads:
        n_samples = args.samples.get(key, SAMPLES[key])
        row = sweep(key, n_samples, args.sizes, args.repeats, args.duel_repeats)
        report["sweep"].append(row)
        report["memory"][row["workload"]] = peak_memory(key, n_samples, args.budget_mib * MIB)
        print(json.dumps(row), flush=True)
    write_report(report, args.output, render)


if __name__ == "__main__":
    main()
