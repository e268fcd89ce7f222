"""Switching from alibi: run alibi's IntegratedGradients and ig_plugin side by side.

The only change in user code is the import; both explainers take the same arguments and return
the same kind of ``Explanation``. On the same model, inputs, targets and method the attributions
agree to float32 round-off, and ig_plugin is faster (compiled, streamed gradient passes).

Writes ``switch_from_alibi.png`` (alibi's attributions, ig_plugin's, and their difference, on
one colour scale) to ``examples/output`` or the folder given with ``--output``.

    python examples/switch_from_alibi.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from alibi.api.interfaces import Explanation
from alibi.explainers import IntegratedGradients as AlibiIntegratedGradients

# The demo's data and model (this script's folder is on sys.path when it is run).
from image_digits import digit_images, train_cnn

from ig_plugin import IntegratedGradients
from ig_plugin.visualization import plot_image_attributions


def timed(explain: Callable[[], Explanation], repeats: int = 3) -> tuple[Explanation, float, float]:
    """The explanation, the first call's time (tracing included) and the median of later calls."""
    start = time.perf_counter()
    explanation = explain()
    first = time.perf_counter() - start
    later = []
    for _ in range(repeats):
        start = time.perf_counter()
        explain()
        later.append(time.perf_counter() - start)
    return explanation, first, statistics.median(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    X = images[test]  # 297 test images
    target = np.argmax(model.predict(X, verbose=0), axis=1)

    # The same arguments for both: only the class differs.
    arguments = {"method": "gausslegendre", "n_steps": 50, "internal_batch_size": 500}
    theirs_explainer = AlibiIntegratedGradients(model, **arguments)
    ours_explainer = IntegratedGradients(model, **arguments)
    theirs, theirs_first, theirs_time = timed(lambda: theirs_explainer.explain(X, target=target))
    ours, ours_first, ours_time = timed(lambda: ours_explainer.explain(X, target=target))

    alibi_attr, ours_attr = theirs.attributions[0], ours.attributions[0]
    difference = ours_attr - alibi_attr
    shown = [0, 1, 2, 3]
    fig = plot_image_attributions(
        np.concatenate([alibi_attr[shown], ours_attr[shown], difference[shown]]),
        titles=[
            f"{who}\nsample {i}"
            for who in ("alibi", "ig_plugin", "ig_plugin - alibi")
            for i in shown
        ],
        ncols=len(shown),
        clip_percentile=100,
    )
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "switch_from_alibi.png"
    fig.savefig(path, dpi=120)

    print(f"{len(X)} images, {arguments}")
    print(
        f"max |attribution difference|: {np.abs(difference).max():.1e} "
        f"(largest |attribution| {np.abs(alibi_attr).max():.2f})"
    )
    print(f"max |delta difference|: {np.abs(ours.deltas - theirs.deltas).max():.1e}")
    print(f"dtype: alibi {alibi_attr.dtype}, ig_plugin {ours_attr.dtype} (the input's)")
    print(f"alibi: {theirs_time:.2f} s per explain (first call {theirs_first:.2f} s)")
    print(
        f"ig_plugin: {ours_time:.2f} s per explain (first call, with tracing, {ours_first:.2f} s)"
    )
    print(f"speed ratio alibi / ig_plugin: {theirs_time / ours_time:.1f}x")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
