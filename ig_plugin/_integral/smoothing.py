"""The numpy side of NoiseTunnel: the noisy copies of X, and how their attributions combine.

Copy ``j`` of X gets Gaussian noise from a random stream of its own, derived from the explain's
entropy (the seed) and ``j``, drawn for one copy at a time, so memory holds one noisy X whatever
``n_samples`` is. The attributions of the copies are folded into running moments in float64
(Welford's update), so no copy is kept: with identical copies (``stdevs=0``) the mean is exactly
the copies' value and the variance exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def noisy_copy(
    arrays: Sequence[np.ndarray], stdevs: Sequence[float], entropy: int, copy: int
) -> tuple[np.ndarray, ...]:
    """X's arrays plus ``N(0, stdev**2)`` noise, in their dtypes; an input with stdev 0 is
    passed as it is."""
    stream = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(copy,)))
    )
    return tuple(
        x if stdev == 0 else x + stream.normal(0.0, stdev, size=x.shape).astype(x.dtype)
        for x, stdev in zip(arrays, stdevs, strict=True)
    )


class RunningMoments:
    """The mean and the population variance of a stream of equally shaped arrays, in float64."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = np.zeros(0)
        self._squares = np.zeros(0)  # sum of squared deviations from the running mean

    def add(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64)
        self.count += 1
        if self.count == 1:
            self.mean, self._squares = value.copy(), np.zeros_like(value)
            return
        deviation = value - self.mean
        self.mean += deviation / self.count
        self._squares += deviation * (value - self.mean)

    @property
    def variance(self) -> np.ndarray:
        """The population variance, ``mean(a**2) - mean(a)**2`` (captum's vargrad)."""
        return self._squares / self.count


class Smoother:
    """Folds the attributions of the noisy copies into smoothgrad, smoothgrad_sq or vargrad.

    As captum defines them: the mean of the copies' attributions, the mean of their squares,
    and their population variance.
    """

    def __init__(self, nt_type: str) -> None:
        self.nt_type = nt_type
        self._moments: list[RunningMoments] = []

    def add(self, attributions: Sequence[np.ndarray]) -> None:
        if not self._moments:
            self._moments = [RunningMoments() for _ in attributions]
        for moments, attribution in zip(self._moments, attributions, strict=True):
            value = np.asarray(attribution, dtype=np.float64)
            moments.add(value**2 if self.nt_type == "smoothgrad_sq" else value)

    def result(self, dtypes: Sequence[np.dtype]) -> list[np.ndarray]:
        """The combined attributions, one per attributed tensor, in ``dtypes``."""
        combined = [m.variance if self.nt_type == "vargrad" else m.mean for m in self._moments]
        return [c.astype(d) for c, d in zip(combined, dtypes, strict=True)]
