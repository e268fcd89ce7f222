"""Integrated Gradients, IDGI, Guided IG, Blur IG and XRAI on the digits CNN, side by side.

Trains the CNN of ``image_digits.py`` (a few seconds), explains four test digits (their
predicted class) five ways, 64 steps each, and writes ``examples/output/digits_path_methods.png``
(or to the folder given with ``--output``):

- Integrated Gradients from an empty image (all pixels 0), along the straight line;
- IDGI (Yang et al., 2023) on the same line: each step's change of the output is shared among
  the pixels in proportion to their squared gradient, so the attributions add up to the
  output's change exactly, whatever the number of steps;
- Guided IG (Kapishnikov et al., 2021): at each step the pixels of smallest |gradient| move
  toward the digit, within a band around the straight line: a path chosen by the model;
- Blur IG (Xu et al., 2020): from a blurred digit (Gaussian, sigma 4) to the digit through
  ever less blurred versions, no baseline;
- XRAI over IG (Kapishnikov et al., 2019): the digit's regions ranked by IG per pixel, each
  pixel its region's density. PAIR's segmentation is tuned for photographs (it segments at
  224 x 224 and dilates every segment by 5 pixels, more than half an 8 x 8 digit), so the
  digits get their own candidate regions: Felzenszwalb's segments at three smallest sizes, and
  the sixteen 2 x 2 blocks.

    python examples/path_methods_digits.py [--output DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from image_digits import digit_images, train_cnn
from matplotlib.figure import Figure
from skimage.segmentation import felzenszwalb

from ig_plugin import (
    XRAI,
    BlurIntegratedGradients,
    GuidedIntegratedGradients,
    IntegratedGradients,
)
from ig_plugin.visualization import ATTRIBUTION_CMAP


def digit_segments(image: np.ndarray) -> np.ndarray:
    """Candidate regions of one 8 x 8 digit ``(H, W, 1)``: Felzenszwalb's segments at three
    smallest sizes, and the sixteen 2 x 2 blocks, as boolean masks ``(K, 8, 8)``."""
    masks = []
    for min_size in (2, 4, 8):
        labels = felzenszwalb(image[..., 0], scale=1.0, sigma=0.0, min_size=min_size)
        masks += [labels == label for label in np.unique(labels)]
    blocks = np.zeros((16, 8, 8), dtype=bool)
    for index in range(16):
        row, column = divmod(index, 4)
        blocks[index, 2 * row : 2 * row + 2, 2 * column : 2 * column + 2] = True
    return np.concatenate([np.array(masks), blocks])


def draw(images: np.ndarray, columns: dict[str, np.ndarray], titles: list[str]) -> Figure:
    """One row per digit: the image, then each method's map on its own scale (centred at zero,
    clipped at its 99th percentile of |value| over the row)."""
    n_rows, n_columns = len(images), 1 + len(columns)
    fig = Figure(figsize=(2.0 * n_columns, 2.0 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_columns, squeeze=False)
    for row, image in enumerate(images):
        axes[row, 0].imshow(image[..., 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(titles[row])
        for column, maps in enumerate(columns.values(), start=1):
            limit = np.percentile(np.abs(maps[row]), 99) or 1.0
            axes[row, column].imshow(maps[row], cmap=ATTRIBUTION_CMAP, vmin=-limit, vmax=limit)
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
    target = np.argmax(model(X).numpy(), axis=1)

    ig = IntegratedGradients(model, n_steps=64, method="riemann_trapezoid")
    explanations = {
        "IG": ig.explain(X, target=target, baselines=0.0),
        "IDGI": IntegratedGradients(model, n_steps=64, idgi=True).explain(
            X, target=target, baselines=0.0
        ),
        "Guided IG": GuidedIntegratedGradients(model, n_steps=64).explain(
            X, target=target, baselines=0.0
        ),
        "Blur IG": BlurIntegratedGradients(model, max_sigma=4.0, n_steps=64).explain(
            X, target=target
        ),
        "XRAI (over IG)": XRAI(ig, digit_segments, min_pixel_diff=2).explain(
            X, target=target, baselines=0.0
        ),
    }
    # The pixel maps summed over the one channel; XRAI's map is already one value per pixel.
    columns = {
        name: explanation.attributions[0]
        if name.startswith("XRAI")
        else explanation.attributions[0][..., 0]
        for name, explanation in explanations.items()
    }
    fig = draw(X, columns, [f"predicted {label}" for label in target])
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "digits_path_methods.png"
    fig.savefig(path, dpi=110)
    for name, explanation in explanations.items():
        print(f"{name:>15}: largest |delta| {np.abs(explanation.deltas).max():.2e}")
    regions = explanations["XRAI (over IG)"].data["regions"]
    print(f"XRAI regions per digit: {regions.reshape(len(X), -1).max(axis=1).tolist()}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
