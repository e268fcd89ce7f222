"""Memory bounded whatever N: every forward pass of a metric holds at most ``batch_size`` points
(a layer that records the rows of each call proves it), and ``perturb_fn`` gets one sample's
``n_perturb_samples`` rows at a time."""

import numpy as np
import pytest
from compat import keras
from models import RowCounter, seeded_floats, set_seeded_weights

from ig_plugin.metrics import deletion, infidelity, insertion, mu_fidelity

N, D = 40, 6
X = seeded_floats((N, D), seed=120)
A = seeded_floats((N, D), seed=121)
TARGET = np.arange(N) % 2


def counted_model(rows):
    inputs = keras.Input((D,))
    hidden = keras.layers.Dense(4, activation="tanh")(RowCounter(rows)(inputs))
    return set_seeded_weights(keras.Model(inputs, keras.layers.Dense(2)(hidden)), seed=122)


METRICS = {
    "deletion": (lambda m, b: deletion(m, X, A, TARGET, steps=9, batch_size=b), N * 10),
    "insertion": (lambda m, b: insertion(m, X, A, TARGET, steps=3, batch_size=b), N * 4),
    "infidelity": (lambda m, b: infidelity(m, X, A, TARGET, batch_size=b, seed=0), N * 10),
    "mu_fidelity": (
        lambda m, b: mu_fidelity(m, X, A, TARGET, subset_percent=0.5, seed=0, batch_size=b),
        N * 128,
    ),
}


@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("batch_size", [7, 64])
def test_no_forward_pass_holds_more_than_batch_size_points(name, batch_size):
    rows = []
    run, n_points = METRICS[name]
    run(counted_model(rows), batch_size)
    assert rows, "the counting layer saw no call"
    assert max(rows) <= batch_size
    # Every point was scored once, plus F(x) on X itself for the metrics that need it.
    assert sum(rows) in (n_points, n_points + N)


def test_perturb_fn_gets_one_sample_at_a_time():
    sizes = []

    def noise(rows, rng):
        sizes.append(len(rows))
        return np.zeros_like(rows), rows

    infidelity(counted_model([]), X, A, TARGET, noise, n_perturb_samples=3, batch_size=5)
    assert sizes == [3] * N
