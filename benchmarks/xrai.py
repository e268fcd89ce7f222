"""XRAI's segmentation and ranking against PAIR saliency 0.2.1's, on the same images and masks.

    python benchmarks/xrai.py          # needs the xrai and pair extras (scikit-image, saliency)

For smooth random RGB images of growing size, with one random base attribution each: the time of
PAIR's ``_get_segments_felzenszwalb`` and ig_plugin's ``felzenszwalb_masks`` (the same masks),
then of PAIR's greedy ``XRAI._xrai`` and ig_plugin's ``rank_regions`` on those masks (checked
equal, map and ranks), as medians of five runs in alternation, with the machine's load. The model
is left out: XRAI's base attributions come from any explainer, timed by the other benchmarks.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from machine import cpu_model
from saliency.core import xrai as pair
from scipy import ndimage

from ig_plugin._regions.ranking import rank_regions
from ig_plugin._regions.segments import felzenszwalb_masks

SIZES = (64, 128, 224)
RUNS = 5


def alternating_medians(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[float, float]:
    """The median seconds of each, run in alternation so that both see the same load."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        for run, spent in zip((first, second), times, strict=True):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()}")
    rng = np.random.default_rng(0)
    print(f"{'size':>8} {'masks':>6} {'segments PAIR/ours':>22} {'ranking PAIR/ours':>24} equal")
    for size in SIZES:
        image = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), (3, 3, 0))
        image = image.astype(np.float32)
        attribution = rng.normal(size=(size, size)).astype(np.float32)
        masks = felzenszwalb_masks(image)
        theirs = list(pair._get_segments_felzenszwalb(image))
        segment_pair, segment_ours = alternating_medians(
            lambda: pair._get_segments_felzenszwalb(image),  # noqa: B023
            lambda: felzenszwalb_masks(image),  # noqa: B023
        )
        rank_pair, rank_ours = alternating_medians(
            lambda: pair.XRAI._xrai(attribution, theirs),  # noqa: B023
            lambda: rank_regions(attribution, masks, 50, 1.0),  # noqa: B023
        )
        pair_map, pair_ranks = pair.XRAI._xrai(attribution, theirs)
        ours = rank_regions(attribution, masks, 50, 1.0)
        equal = np.array_equal(ours.saliency, pair_map) and np.array_equal(ours.ranks, pair_ranks)
        print(
            f"{size:>4}x{size:<3} {len(masks):>6} "
            f"{segment_pair:>8.2f}s/{segment_ours:.2f}s ({segment_pair / segment_ours:4.1f}x) "
            f"{rank_pair:>9.3f}s/{rank_ours:.3f}s ({rank_pair / rank_ours:4.1f}x) {equal}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
