"""``n_steps="auto"`` on batches it has not explained before, against one batch explained again.

``benchmarks/auto_steps.py`` times each rule on one batch, explained again and again. Auto's
rounds then send the model batches of the lengths they had the time before, and the model's
kernels reuse what they set up for those lengths (oneDNN's primitives are made per shape). On a
batch not seen before, most of auto's rounds have lengths of their own. The fixed rule's
batches keep theirs: the chunk and the remainder depend on the number of samples only.

For the digits CNN and the digits MLP of ``auto_steps.py``, at tolerances 1e-2 and 1e-3, this
times auto and the smallest fixed Gauss-Legendre ``n_steps`` of that benchmark's committed table
(``results/auto_steps.json``) on that benchmark's batch, explained again and again ("same"), and
on the other digits in batches of as many images, each explained for the first time ("fresh"),
taken in alternation. The fresh batches differ from the same one in how many gradients auto
needs (and the fixed count was chosen for the same one), so it also reports auto's time per
gradient, on the same batch, on each fresh batch and on that batch explained a second time
right after: the last two differ only in what the model's kernels had set up. Medians.

    python benchmarks/fresh_inputs.py [--output results/fresh_inputs.json]

Writes the JSON and an RST table (docs/steps.rst includes it) next to it. About 3 minutes on two
cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import auto_steps
import numpy as np
from auto_steps import BATCH, RESULTS, TOLERANCES
from machine import LoadMeter, describe
from report import _list_table, measured_on, write_report

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from image_digits import digit_images

from ig_plugin import IntegratedGradients

# auto_steps.py's models and titles (the titles find the fixed counts in its table).
MODELS = {
    title: make
    for title, make in auto_steps.MODELS.items()
    if make in (auto_steps.digits_cnn, auto_steps.digits_mlp)
}


def fixed_steps(title: str, tolerance: float) -> int:
    """The smallest fixed ``n_steps`` of ``auto_steps.py``'s committed table."""
    rows = json.loads((RESULTS / "auto_steps.json").read_text())["rows"]
    (row,) = (r for r in rows if r["model"] == title and r["tolerance"] == tolerance)
    return int(row["smallest_fixed_n_steps"])


def fresh_batches(model, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every digit not in ``X``, shaped like it, in batches of ``len(X)``, with the classes the
    model predicts for them."""
    images = digit_images()[0].reshape(-1, *X.shape[1:])
    seen = {image.tobytes() for image in X}
    others = np.stack([image for image in images if image.tobytes() not in seen])
    n_batches = len(others) // len(X)
    batches = others[: n_batches * len(X)].reshape(n_batches, *X.shape)
    return [(b, np.argmax(model.predict(b, verbose=0), axis=1)) for b in batches]


def _timed(explainer: IntegratedGradients, X: np.ndarray, target: np.ndarray) -> tuple[float, Any]:
    """The wall time of one explain, and its explanation."""
    start = time.perf_counter()
    explanation = explainer.explain(X, target=target)
    return time.perf_counter() - start, explanation


def measure(title: str, make) -> list[dict[str, Any]]:
    model, X, target = make()
    batches = fresh_batches(model, X)
    rows = []
    for tolerance in TOLERANCES:
        auto = IntegratedGradients(
            model, n_steps="auto", tolerance=tolerance, internal_batch_size=BATCH
        )
        n_steps = fixed_steps(title, tolerance)
        fixed = IntegratedGradients(model, n_steps=n_steps, internal_batch_size=BATCH)
        auto.explain(X, target=target)
        fixed.explain(X, target=target)
        # Auto on the same batch, on a fresh batch and on that batch again; the fixed rule on
        # the first two.
        auto_s: dict[str, list[float]] = {"same": [], "fresh": [], "again": []}
        per_gradient: dict[str, list[float]] = {kind: [] for kind in auto_s}
        fixed_s: dict[str, list[float]] = {"same": [], "fresh": []}
        load = LoadMeter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for batch, classes in batches:
                inputs = {"same": (X, target), "fresh": (batch, classes), "again": (batch, classes)}
                for kind, (x, t) in inputs.items():
                    seconds, explanation = _timed(auto, x, t)
                    auto_s[kind].append(seconds)
                    per_gradient[kind].append(seconds / explanation.n_steps.sum())
                for kind in fixed_s:
                    fixed_s[kind].append(_timed(fixed, *inputs[kind])[0])
        median = statistics.median
        rows.append(
            {
                "model": title,
                "tolerance": tolerance,
                "fixed_n_steps": n_steps,
                "fresh_batches": len(batches),
                "auto_same_s": median(auto_s["same"]),
                "fixed_same_s": median(fixed_s["same"]),
                "auto_fresh_s": median(auto_s["fresh"]),
                "fixed_fresh_s": median(fixed_s["fresh"]),
                **{
                    f"auto_us_per_gradient_{kind}": median(values) * 1e6
                    for kind, values in per_gradient.items()
                },
                "load": load.stop(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def render(report: dict[str, Any]) -> str:
    rows = [
        [
            row["model"],
            f"{row['tolerance']:g}",
            str(row["fixed_n_steps"]),
            f"{row['auto_same_s'] / row['fixed_same_s']:.2f}",
            f"{row['auto_fresh_s'] / row['fixed_fresh_s']:.2f}",
            f"{row['auto_us_per_gradient_same']:.1f} / {row['auto_us_per_gradient_fresh']:.1f}"
            f" / {row['auto_us_per_gradient_again']:.1f}",
            f"{row['fixed_same_s']:.3f} / {row['fixed_fresh_s']:.3f}",
            str(row["fresh_batches"]),
        ]
        for row in report["rows"]
    ]
    lines = _list_table(
        "n_steps='auto' on one batch explained again and again, and on batches explained once",
        [
            "model",
            "tolerance",
            "fixed n_steps",
            "time auto / fixed, same batch",
            "time auto / fixed, fresh batches",
            "auto's us per gradient: same batch / fresh batch / that batch again",
            "fixed time, same / fresh (s)",
            "fresh batches",
        ],
        rows,
    )
    return "\n".join([*lines, measured_on(report)]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=RESULTS / "fresh_inputs.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": describe(), "rows": []}
    for title, make in MODELS.items():
        report["rows"] += measure(title, make)
    write_report(report, args.output, render)


if __name__ == "__main__":
    main()
