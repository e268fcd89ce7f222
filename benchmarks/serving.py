"""Serving benchmark: one request of 1 and of 32 samples on workload 1 (the small CNN).

    make benchmark-serving                   # with MLServer's alibi runtime; about 2 minutes
    python benchmarks/serving.py --quick     # fewer repeats, parallel_workers 0 only
    python benchmarks/serving.py --no-alibi-runtime

The same explanation (Gauss-Legendre, 50 steps, ``internal_batch_size=500``, zero baselines, the
predicted class as target) is timed five ways:

- ``in-process``: ``IntegratedGradients.explain`` in this process, the explainer loaded from the
  folder the server loads (saved with ``target_fn=argmax``);
- ``served``: ig_plugin's MLServer runtime serving that folder (``served, gzip response``: the
  same, asking for a compressed response as ``requests`` and browsers do);
- ``served, default target``: the runtime with a fresh explainer (``init_parameters``), which
  takes the argmax itself (one more forward pass);
- ``alibi runtime, alibi IG``: MLServer's alibi runtime (mlserver-alibi-explain) with alibi's
  own IntegratedGradients, built from the same arguments;
- ``alibi runtime, ig_plugin``: the alibi runtime serving an ig_plugin folder (no target_fn).

A served time is one HTTP request as a client sees it: the request body is encoded beforehand,
the clock runs from sending it until the whole response is received (the client's JSON parsing
of the response is not timed). Each server runs every model at once; ``mlserver start`` is run
once per ``parallel_workers`` setting (0: models in the server process, as Seldon Core v2 runs
MLServer; 1: MLServer's default, one worker process). The first request to each model after the
server is ready is timed apart (targets: within 2x of later ones; served / in-process <= 1.3 at
32 samples). Then the runners take turns, so a change of machine load falls on all of them.
Before the servers start, the in-process explainer gets the runtime's warm-up (zero inputs of 1
and 2 samples) and its first explanation of the largest size (32 samples) is timed: the part
of a served first request's extra time that is the explanation's own.

Prints the tables, writes ``benchmarks/results/serving.json`` and ``serving.rst`` (the deploying
page of the docs includes the latter).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import requests
from machine import LoadMeter, describe
from report import _list_table
from workloads import WORKLOADS

from ig_plugin import IntegratedGradients
from ig_plugin.serving import LocalServer
from ig_plugin.serving._explaining import WARMUP_SIZES

RESULTS = Path(__file__).parent / "results"
WORKLOAD = WORKLOADS["cnn"]
ARGUMENTS = {"method": "gausslegendre", "n_steps": 50, "internal_batch_size": 500}
#: Most served seconds per in-process second at 32 samples.
SERVED_TARGET = 1.3
#: Most seconds of the first request after load per second of a later one.
FIRST_REQUEST_TARGET = 2.0
CONCURRENT = 8
#: The runner that accepts a gzip-compressed response.
GZIP_LABEL = "served, gzip response"
RUNTIME = "ig_plugin.serving.IntegratedGradientsRuntime"
ALIBI_RUNTIME = "mlserver_alibi_explain.AlibiExplainRuntime"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats, parallel_workers 0")
    parser.add_argument("--repeats", type=int, help="timed requests per runner and size (15)")
    parser.add_argument("--sizes", default="1,32", help="samples per request (1,32)")
    parser.add_argument("--parallel-workers", help="MLServer settings to run (0,1)")
    parser.add_argument(
        "--no-alibi-runtime", action="store_true", help="leave out MLServer's alibi runtime"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "serving.json")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 15)
    args.sizes = [int(size) for size in args.sizes.split(",")]
    workers = args.parallel_workers or ("0" if args.quick else "0,1")
    args.parallel_workers = [int(value) for value in workers.split(",")]
    available = importlib.util.find_spec("mlserver_alibi_explain") is not None
    if not args.no_alibi_runtime and not available:
        parser.error(
            "mlserver_alibi_explain is not importable: run `make benchmark-serving`, which puts "
            "it on PYTHONPATH, or pass --no-alibi-runtime"
        )
    args.alibi_runtime = not args.no_alibi_runtime
    return args


# --- the model repository ------------------------------------------------------------------


def _write(folder: Path, name: str, implementation: str, parameters: dict[str, Any]) -> None:
    (folder / name).mkdir(parents=True)
    settings = {"name": name, "implementation": implementation, "parameters": parameters}
    (folder / name / "model-settings.json").write_text(json.dumps(settings, indent=2))


def write_repository(root: Path, alibi_runtime: bool) -> tuple[Path, dict[str, str]]:
    """Save the model and explainers; write one model-settings.json per served runner.

    Returns the repository and the served runners' model names.
    """
    model = WORKLOAD.build()
    model_file = root / "cnn.keras"
    model.save(model_file)
    argmax = partial(np.argmax, axis=1)
    IntegratedGradients(model, target_fn=argmax, **ARGUMENTS).save(root / "explainer")
    IntegratedGradients(model, **ARGUMENTS).save(root / "explainer-without-target-fn")
    models = root / "models"
    served = {"served": "ig", GZIP_LABEL: "ig", "served, default target": "ig-default-target"}
    # The runners share one model file, kept outside their folders: the settings allow that.
    shared = {"model_uri": str(model_file), "allow_paths_outside_folder": True}
    _write(models, "ig", RUNTIME, {"uri": str(root / "explainer"), "extra": shared})
    _write(
        models,
        "ig-default-target",
        RUNTIME,
        {"extra": {**shared, "init_parameters": ARGUMENTS}},
    )
    if alibi_runtime:
        alibi_extra = {"explainer_type": "integrated_gradients", "infer_uri": str(model_file)}
        _write(
            models,
            "alibi-ig",
            ALIBI_RUNTIME,
            {"extra": {**alibi_extra, "init_parameters": ARGUMENTS}},
        )
        _write(
            models,
            "alibi-runtime-ig",
            ALIBI_RUNTIME,
            {"uri": str(root / "explainer-without-target-fn"), "extra": alibi_extra},
        )
        served["alibi runtime, alibi IG"] = "alibi-ig"
        served["alibi runtime, ig_plugin"] = "alibi-runtime-ig"
    return models, served


# --- requests ------------------------------------------------------------------------------


def request_body(X: np.ndarray) -> bytes:
    tensor = {"name": "x", "shape": list(X.shape), "datatype": "FP32", "data": X.ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def attributions_of(response: dict[str, Any]) -> np.ndarray:
    """The attributions in a response of either runtime."""
    outputs = {output["name"]: output for output in response["outputs"]}
    if "attributions" in outputs:
        output = outputs["attributions"]
        return np.array(output["data"], "float32").reshape(output["shape"])
    # The alibi runtime: one BYTES tensor holding the Explanation as JSON.
    explanation = json.loads(outputs["explanation"]["data"][0])
    return np.asarray(explanation["data"]["attributions"][0], "float32")


def served_runner(
    session: requests.Session, url: str, body: bytes, gzip: bool = False
) -> Callable[[], bytes]:
    # curl asks for a plain response; requests, like browsers, accepts gzip, which MLServer then
    # spends time on (its GZipMiddleware, on by default).
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip" if gzip else "identity",
    }

    def run() -> bytes:
        response = session.post(url, data=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:500]}")
        return response.content

    return run


def seconds(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


# --- one server ----------------------------------------------------------------------------


def measure_server(
    args: argparse.Namespace,
    repository: Path,
    served: dict[str, str],
    explainer: IntegratedGradients,
    inputs: dict[int, np.ndarray],
    workers: int,
) -> dict[str, Any]:
    """Start ``mlserver start`` with ``workers`` parallel workers and time every runner."""
    meter = LoadMeter()
    bodies = {size: request_body(X) for size, X in inputs.items()}
    largest = max(inputs)
    started = time.perf_counter()
    # The log beside the repository, in the benchmark's temporary folder (removed at the end).
    log_path = repository.parent / f"mlserver-{workers}-workers.log"
    with LocalServer(
        repository, parallel_workers=workers, ready_timeout=600, log_path=log_path
    ) as server:
        startup_s = time.perf_counter() - started
        print(f"\nparallel_workers={workers}: all models ready {startup_s:.1f} s after start")
        session = requests.Session()
        runners: dict[str, dict[int, Callable[[], Any]]] = {
            "in-process": {size: partial(explainer.explain, X) for size, X in inputs.items()}
        }
        for label, name in served.items():
            url = f"{server.url}/v2/models/{name}/infer"
            gzip = label == GZIP_LABEL
            runners[label] = {
                size: served_runner(session, url, bodies[size], gzip) for size in inputs
            }
        # The first request to each model after load, with the largest size.
        first = {
            label: seconds(runners[label][largest])[0] for label in served if label != GZIP_LABEL
        }
        runners["in-process"][largest]()  # the in-process explainer traces here, untimed
        for size in inputs:
            runners["in-process"][size]()
        times: dict[str, dict[int, list[float]]] = {
            label: {size: [] for size in inputs} for label in runners
        }
        last: dict[str, Any] = {}
        for _ in range(args.repeats):
            for size in inputs:
                for label, by_size in runners.items():
                    elapsed, result = seconds(by_size[size])
                    times[label][size].append(elapsed)
                    if size == largest:
                        last[label] = result
        concurrent = concurrency(runners["served"][largest])
    reference = last["in-process"].attributions[0]
    differences = {
        label: float(np.abs(attributions_of(json.loads(last[label])) - reference).max())
        for label in served
    }
    medians = {
        label: {size: statistics.median(values) for size, values in by_size.items()}
        for label, by_size in times.items()
    }
    return {
        "parallel_workers": workers,
        "startup_s": startup_s,
        "first_request_s": first,
        "first_request_samples": largest,
        "median_s": medians,
        "runs_s": times,
        "concurrent": {
            "requests": CONCURRENT,
            "samples": largest,
            "wall_s": concurrent,
            "wall_over_sequential": concurrent / (CONCURRENT * medians["served"][largest]),
        },
        "max_abs_difference_from_in_process": differences,
        "other_load_cores": meter.stop(),
    }


def first_after_warm_up(explainer: IntegratedGradients, X: np.ndarray) -> float:
    """Seconds of ``explainer``'s first explanation of ``X`` after the runtime's warm-up (zero
    inputs of each of its sizes, see :data:`WARMUP_SIZES`), in-process: what of a served first
    request's extra time is the explanation's own."""
    for n_samples in WARMUP_SIZES:
        explainer.explain(np.zeros((n_samples, *X.shape[1:]), X.dtype))
    return seconds(partial(explainer.explain, X))[0]


def concurrency(run: Callable[[], Any]) -> float:
    """Wall seconds of :data:`CONCURRENT` requests sent at once."""
    barrier = threading.Barrier(CONCURRENT + 1)
    errors: list[BaseException] = []

    def send() -> None:
        barrier.wait()
        try:
            run()
        except BaseException as error:  # re-raised below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=send) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall


# --- ratios, tables ------------------------------------------------------------------------


def ratios(run: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    medians, largest = run["median_s"], max(sizes)
    in_process = medians["in-process"]
    return {
        "served_over_in_process": {
            label: {size: medians[label][size] / in_process[size] for size in sizes}
            for label in medians
            if label != "in-process"
        },
        "first_over_later": {
            label: first / medians[label][largest]
            for label, first in run["first_request_s"].items()
        },
    }


def _milliseconds(value: float) -> str:
    return f"{1000 * value:.1f}"


def table_rows(run: dict[str, Any], sizes: list[int]) -> list[list[str]]:
    medians, largest = run["median_s"], max(sizes)
    rows = []
    for label in medians:
        row = [label, *(_milliseconds(medians[label][size]) for size in sizes)]
        if label == "in-process":
            row += ["1.00", "", ""]
        else:
            over = run["ratios"]["served_over_in_process"][label][largest]
            row.append(f"{over:.2f}")
            if label in run["first_request_s"]:
                first, ratio = (
                    run["first_request_s"][label],
                    run["ratios"]["first_over_later"][label],
                )
                row += [_milliseconds(first), f"{ratio:.2f}"]
            else:
                row += ["", ""]
        rows.append(row)
    return rows


def header(sizes: list[int]) -> list[str]:
    largest = max(sizes)
    return [
        "runner",
        *(f"{size} sample{'s' if size > 1 else ''} (ms)" for size in sizes),
        f"/ in-process at {largest}",
        f"first request, {largest} (ms)",
        "first / later",
    ]


def print_run(run: dict[str, Any], sizes: list[int]) -> None:
    columns = header(sizes)
    widths = [max(26, len(columns[0]))] + [max(12, len(c)) for c in columns[1:]]
    print(
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for row in table_rows(run, sizes):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    concurrent = run["concurrent"]
    print(
        f"{concurrent['requests']} concurrent requests of {concurrent['samples']} samples to "
        f"'served': {concurrent['wall_s']:.2f} s, {concurrent['wall_over_sequential']:.2f} of "
        "the same requests one after the other"
    )
    differences = ", ".join(
        f"{label} {value:.1e}" for label, value in run["max_abs_difference_from_in_process"].items()
    )
    print(f"max |attribution - in-process|: {differences}")
    print(f"other processes kept {run['other_load_cores']:.2f} cores busy meanwhile")


def render(report: dict[str, Any]) -> str:
    """The runs as reStructuredText."""
    machine, sizes = report["machine"], report["settings"]["sizes"]
    lines = [
        f"Measured on {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, alibi {machine['alibi']}, "
        f"MLServer {report['settings']['mlserver']}. Command: ``{report['command']}``. Workload 1 "
        f"(small CNN), Gauss-Legendre, 50 steps, ``internal_batch_size=500``; medians of "
        f"{report['settings']['repeats']} requests per runner and size.",
        "",
    ]
    for run in report["runs"]:
        concurrent = run["concurrent"]
        title = (
            f"parallel_workers={run['parallel_workers']}: milliseconds per request "
            f"(server ready in {run['startup_s']:.0f} s; other load "
            f"{run['other_load_cores']:.2f} cores)"
        )
        lines += _list_table(title, header(sizes), table_rows(run, sizes))
        lines += [
            f"{concurrent['requests']} concurrent requests of {concurrent['samples']} samples "
            f"took {concurrent['wall_over_sequential']:.2f} of the time of the same requests one "
            "after the other.",
            "",
        ]
    largest, warm_up = max(sizes), " and ".join(map(str, WARMUP_SIZES))
    lines.append(
        f"In-process, after the runtime's warm-up (zero inputs of {warm_up} samples), the first "
        f"explanation of {largest} samples took "
        f"{_milliseconds(report['in_process_first_s'])} ms, "
        f"{report['in_process_first_over_later']:.2f} times a later one."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    meter = LoadMeter()
    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/serving.py", *sys.argv[1:]]),
        "machine": describe(),
        "settings": {
            **ARGUMENTS,
            "sizes": args.sizes,
            "repeats": args.repeats,
            "served_target": SERVED_TARGET,
            "first_request_target": FIRST_REQUEST_TARGET,
            "mlserver": metadata.version("mlserver"),
        },
        "runs": [],
    }
    machine = report["machine"]
    print(f"{machine['cpu']}, {machine['cores']} cores, TensorFlow {machine['tensorflow']}")
    with tempfile.TemporaryDirectory(prefix="ig_plugin-serving-") as tmp:
        repository, served = write_repository(Path(tmp), args.alibi_runtime)
        model = keras.models.load_model(Path(tmp) / "cnn.keras")
        explainer = IntegratedGradients.load(Path(tmp) / "explainer", model)
        inputs = {size: WORKLOAD.make_inputs(size) for size in args.sizes}
        largest = max(args.sizes)
        report["in_process_first_s"] = first_after_warm_up(explainer, inputs[largest])
        for workers in args.parallel_workers:
            run = measure_server(args, repository, served, explainer, inputs, workers)
            run["ratios"] = ratios(run, args.sizes)
            report["runs"].append(run)
            print_run(run, args.sizes)
    report["other_load_cores"] = meter.stop()
    later = report["runs"][0]["median_s"]["in-process"][largest]
    report["in_process_first_over_later"] = report["in_process_first_s"] / later
    met = all(
        run["ratios"]["served_over_in_process"]["served"][largest] <= SERVED_TARGET
        and run["ratios"]["first_over_later"]["served"] <= FIRST_REQUEST_TARGET
        for run in report["runs"]
    )
    report["targets_met"] = met
    print(
        f"\ntargets (served / in-process <= {SERVED_TARGET} at {largest} samples, first request "
        f"<= {FIRST_REQUEST_TARGET}x later ones): {'met' if met else 'MISSED'}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".rst").write_text(render(report))
    print(f"wrote {args.output} and {args.output.with_suffix('.rst')}")


if __name__ == "__main__":
    main()
