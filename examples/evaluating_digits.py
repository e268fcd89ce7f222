"""Which explanation is faithful? Integrated Gradients, Expected Gradients and SmoothGrad over IG on
the digits CNN, evaluated with ig_plugin.metrics.

Trains the CNN of ``image_digits.py`` (a few seconds), explains 64 test digits for their predicted
class with each method (and a random ranking, for reference), then measures:

- deletion and insertion curves: the predicted probability as the pixels with the largest
  attributions are set to black (deleted), or put into a black image (inserted), 4 pixels a step;
- infidelity: how well the attributions' sum over a random fifth of the pixels predicts the
  output's drop when those pixels are set to black (0 for exact attributions of a linear model);
- MuFidelity: the rank correlation of the same two over 128 random fifths;
- max-sensitivity: the largest relative change of the attributions when each pixel moves by up
  to 0.02.

Writes ``examples/output/digits_evaluation.png`` (the curves) and ``digits_evaluation.rst`` (the
table the docs include), or to the folder given with ``--output``.

    python examples/evaluating_digits.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from image_digits import digit_images, train_cnn
from matplotlib.figure import Figure

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel, metrics

N_DIGITS, STEPS, FIFTH = 64, 16, 0.2


def remove_a_fifth(rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Infidelity's perturbation for attributions from a black baseline: a random fifth of the
    pixels set to 0. ``I`` is the 0/1 mask (in units of the pixels' own values), so ``I . phi``
    is the attributions' sum over the removed pixels."""
    removed = (rng.random(rows.shape) < FIFTH).astype(rows.dtype)
    return removed, rows - removed * rows


def evaluate(model: Any, X: np.ndarray, target: np.ndarray, method: Any) -> dict[str, Any]:
    """Every metric of one method's attributions: ``method`` is an explainer, or attributions
    (the random ranking, which has no max-sensitivity)."""
    given = isinstance(method, np.ndarray)
    attributions = method if given else method.explain(X, target=target).attributions[0]
    curves = {
        kind: curve(model, X, attributions, target, baseline=0.0, steps=STEPS)
        for kind, curve in (("deletion", metrics.deletion), ("insertion", metrics.insertion))
    }
    return {
        **curves,
        "infidelity": metrics.infidelity(
            model, X, attributions, target, remove_a_fifth, n_perturb_samples=32, seed=0
        ),
        "mu_fidelity": metrics.mu_fidelity(
            model, X, attributions, target, grid_size=None, subset_percent=FIFTH, seed=0
        ),
        "sensitivity": (
            None
            if given
            else metrics.sensitivity_max(method, X, target, n_perturb_samples=5, seed=0)
        ),
    }


def draw(results: dict[str, dict[str, Any]]) -> Figure:
    """The mean deletion and insertion curves of each method, side by side."""
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for axis, kind in zip(axes, ("deletion", "insertion"), strict=True):
        for name, result in results.items():
            curves = result[kind]
            style = {"color": "0.6", "linestyle": "--"} if name.startswith("random") else {}
            label = f"{name} (AUC {curves.auc.mean():.3f})"
            axis.plot(curves.fractions, curves.scores.mean(axis=0), label=label, **style)
        better = "lower" if kind == "deletion" else "higher"
        axis.set_title(f"{kind.capitalize()} ({better} is better)")
        axis.set_xlabel(f"fraction of the pixels {'deleted' if kind == 'deletion' else 'inserted'}")
        axis.legend(fontsize="small")
    axes[0].set_ylabel("probability of the predicted class (mean)")
    return fig


def table(results: dict[str, dict[str, Any]]) -> str:
    """The means over the digits, as a reStructuredText table."""
    lines = [
        ".. list-table:: Means over 64 test digits (deletion: lower is better; insertion and "
        "MuFidelity: higher; infidelity and max-sensitivity: lower)",
        "   :header-rows: 1",
        "",
        "   * - method",
        "     - deletion AUC",
        "     - insertion AUC",
        "     - infidelity",
        "     - MuFidelity",
        "     - max-sensitivity",
    ]
    for name, result in results.items():
        sensitivity = result["sensitivity"]
        lines += [
            f"   * - {name}",
            f"     - {result['deletion'].auc.mean():.3f}",
            f"     - {result['insertion'].auc.mean():.3f}",
            f"     - {result['infidelity'].mean():.2e}",
            f"     - {result['mu_fidelity'].mean():.3f}",
            f"     - {'-' if sensitivity is None else f'{sensitivity.mean():.3f}'}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    X = images[test][:N_DIGITS]
    target = model.predict(X, verbose=0).argmax(axis=1)

    ig = IntegratedGradients(model, n_steps=50)
    methods = {
        "Integrated Gradients": ig,
        "Expected Gradients": ExpectedGradients(model, images[train][:100], seed=0),
        "SmoothGrad (IG)": NoiseTunnel(ig, nt_samples=20, stdevs=0.25, seed=0),
        "random ranking": np.random.default_rng(0).normal(size=X.shape).astype("float32"),
    }
    results = {name: evaluate(model, X, target, method) for name, method in methods.items()}

    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "digits_evaluation.png"
    draw(results).savefig(path, dpi=110)
    text = table(results)
    (args.output / "digits_evaluation.rst").write_text(text)
    print(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
