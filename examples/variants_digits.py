"""Integrated Gradients, Expected Gradients and SmoothGrad over IG on the digits CNN, side by side.

Trains the CNN of ``image_digits.py`` (a few seconds), explains four test digits three ways and
writes ``examples/output/digits_variants.png`` (or to the folder given with ``--output``):

- Integrated Gradients from an empty image (all pixels 0: one baseline);
- Expected Gradients over 100 training images (200 draws per digit): no single baseline, and the
  attributions add up to F(x) minus the mean output over the background;
- SmoothGrad over IG: the mean of IG over 20 copies of each digit with Gaussian noise of
  standard deviation 0.25 (pixels are in [0, 1]).

    python examples/variants_digits.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from image_digits import digit_images, train_cnn
from matplotlib.figure import Figure

from ig_plugin import ExpectedGradients, IntegratedGradients, NoiseTunnel
from ig_plugin.visualization import ATTRIBUTION_CMAP


def draw(images: np.ndarray, columns: dict[str, np.ndarray], titles: list[str]) -> Figure:
    """One row per digit: the image, then each method's attributions on the row's own scale
    (centred at zero, clipped at the row's 99th percentile of |attribution|)."""
    n_rows, n_columns = len(images), 1 + len(columns)
    fig = Figure(figsize=(2.1 * n_columns, 2.0 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_columns, squeeze=False)
    for row, image in enumerate(images):
        axes[row, 0].imshow(image[..., 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(titles[row])
        limit = np.percentile(np.abs([a[row] for a in columns.values()]), 99) or 1.0
        for column, attributions in enumerate(columns.values(), start=1):
            shown = axes[row, column].imshow(
                attributions[row, ..., 0], cmap=ATTRIBUTION_CMAP, vmin=-limit, vmax=limit
            )
        fig.colorbar(shown, ax=axes[row, -1], shrink=0.8)
    for column, name in enumerate(["digit", *columns]):
        axes[0, column].set_title(name)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output")
    args = parser.parse_args()

    images, labels, train, test = digit_images()
    model = train_cnn(images[train], labels[train])
    X = images[test][:4]
    target = model.predict(X, verbose=0).argmax(axis=1)

    ig = IntegratedGradients(model, n_steps=50)
    plain = ig.explain(X, baselines=0.0, target=target)
    background = images[train][:100]
    expected = ExpectedGradients(model, background, n_samples=200, seed=0).explain(X, target=target)
    smooth = NoiseTunnel(ig, "smoothgrad", nt_samples=20, stdevs=0.25, seed=0).explain(
        X, baselines=0.0, target=target
    )

    columns = {
        "Integrated Gradients": plain.attributions[0],
        "Expected Gradients": expected.attributions[0],
        "SmoothGrad (IG)": smooth.attributions[0],
    }
    fig = draw(X, columns, [f"predicted {t}" for t in target])
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "digits_variants.png"
    fig.savefig(path, dpi=110)

    probability = plain.predictions[np.arange(len(X)), target]
    print(f"explained classes: {target.tolist()}, true: {labels[test][:4].tolist()}")
    print(f"F(x): {probability.astype(float).round(3).tolist()}")
    print(
        f"Expected Gradients, mean output over the background: {expected.expected_value.round(3)}"
    )
    print(
        f"largest |delta|: IG {np.abs(plain.deltas).max():.1e}, Expected Gradients (sampled) "
        f"{np.abs(expected.deltas).max():.1e}, SmoothGrad {np.abs(smooth.deltas).max():.1e}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
