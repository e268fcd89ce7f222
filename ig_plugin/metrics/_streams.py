"""The metrics' random draws: one stream per sample of X (numpy only).

Sample ``i`` draws from a stream derived from the call's entropy (the seed) and ``i``, as Expected
Gradients' draws are (:mod:`ig_plugin._integral.draws`): its perturbations do not depend on
``batch_size``, on the other samples or on how the samples are cut into chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ig_plugin._integral.draws import fresh_entropy


def entropy_of(seed: int | None) -> int:
    """The entropy of one call: the seed, or fresh bits from the operating system."""
    return fresh_entropy() if seed is None else seed


def random_stream(entropy: int, key: int) -> np.random.Generator:
    """The random stream of sample ``key`` (its index in X), or of another numbered thing (a
    layer to randomize)."""
    sequence = np.random.SeedSequence(entropy, spawn_key=(key,))
    return np.random.Generator(np.random.PCG64(sequence))


def sample_chunks(n_rows: int, per_sample: int, batch_size: int) -> Iterator[np.ndarray]:
    """The samples of X in chunks whose ``per_sample`` rows each add up to at most
    ``batch_size`` rows (one sample at least, whatever ``per_sample`` is)."""
    step = max(1, batch_size // per_sample)
    for first in range(0, n_rows, step):
        yield np.arange(first, min(first + step, n_rows))
