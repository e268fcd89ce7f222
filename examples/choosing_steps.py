"""How many steps? The integration error against n_steps on a real model, and n_steps="auto".

Trains the digits CNN of ``image_digits.py`` (a few seconds), explains 24 test images with each
quadrature method at 4 to 256 steps, and measures each explanation's error against a 2,048-node
Gauss-Legendre reference: the sum over pixels of |attribution - reference|, relative to
|F(x) - F(x')|. Then lets ``n_steps="auto"`` choose per image at two tolerances, and plots all of
it into ``examples/output/choosing_steps.png``.

    python examples/choosing_steps.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from image_digits import digit_images, train_cnn
from matplotlib.figure import Figure

from ig_plugin import IntegratedGradients

STEPS = (4, 8, 16, 32, 64, 128, 256)
METHODS = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left")
TOLERANCES = (1e-2, 1e-3)
N_IMAGES = 24


def relative_errors(explanation, reference) -> np.ndarray:
    """Each sample's summed |attribution error|, relative to its |F(x) - F(x')|."""
    error = np.abs(explanation.attributions[0].astype(np.float64) - reference.attributions[0])
    change = reference.attributions[0].sum(axis=(1, 2, 3)) - reference.deltas
    return error.sum(axis=(1, 2, 3)) / np.maximum(np.abs(change), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    X = images[test][:N_IMAGES]
    target = np.argmax(model.predict(X, verbose=0), axis=1)

    def explain(**settings):
        explainer = IntegratedGradients(model, internal_batch_size=2048, **settings)
        return explainer.explain(X, target=target, baselines=0.0)

    reference = explain(n_steps=2048)
    medians = {
        method: [
            np.median(relative_errors(explain(method=method, n_steps=n), reference)) for n in STEPS
        ]
        for method in METHODS
    }
    autos = {}
    with warnings.catch_warnings(record=True):  # images at max_steps: printed below
        warnings.simplefilter("always")
        for tolerance in TOLERANCES:
            autos[tolerance] = explain(n_steps="auto", tolerance=tolerance)

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for method, values in medians.items():
        ax.plot(STEPS, values, marker="o", label=f"{method} (median of {N_IMAGES} images)")
    for (tolerance, auto), marker in zip(autos.items(), ("x", "+"), strict=True):
        label = f'n_steps="auto", tolerance={tolerance:g} (each image)'
        errors = relative_errors(auto, reference)
        ax.scatter(auto.n_steps, errors, color="black", marker=marker, zorder=3, label=label)
        ax.axhline(tolerance, color="grey", linestyle="--", linewidth=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="gradient evaluations per image (n_steps)",
        ylabel="sum |error| / |F(x) - F(x')|",
        title=f"Integration error of IG on the digits CNN ({N_IMAGES} test images)",
    )
    ax.set_xticks([*STEPS, 512], [str(n) for n in (*STEPS, 512)])
    ax.legend(fontsize=8)
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "choosing_steps.png"
    fig.savefig(path, dpi=120)

    for method, values in medians.items():
        errors = " ".join(f"{n}:{v:.1e}" for n, v in zip(STEPS, values, strict=True))
        print(f"{method:18s} {errors}")
    for tolerance, auto in autos.items():
        errors = relative_errors(auto, reference)
        print(
            f"auto, tolerance {tolerance:g}: {auto.n_steps.sum()} gradient evaluations for "
            f"{len(X)} images ({auto.n_steps.min()} to {auto.n_steps.max()} each); "
            f"{np.mean(errors <= tolerance):.0%} within the tolerance"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
