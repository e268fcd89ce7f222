"""``batch_size="auto"`` of the metrics: the rows per forward pass come from ``memory_budget`` and
the memory one scored row costs (the explainers' estimate), and never change a score.

A layer that records the rows of each call shows the budget is obeyed: a budget of seven rows'
cost gives passes of seven rows, and the scores equal those of a fixed ``batch_size``.
``sensitivity_max`` explains perturbed copies instead: its "auto" sizes the copies per call of
the explainer, and an explanation function that records its calls shows it."""

import numpy as np
import pytest
from compat import keras
from concurrency import run_together
from models import RowCounter, linear_multi_input_model, seeded_floats, set_seeded_weights

from ig_plugin import IntegratedGradients
from ig_plugin._request.forward_kwargs import ForwardKwargs
from ig_plugin._request.inputs import normalise_inputs
from ig_plugin._request.request import ModelCall
from ig_plugin.metrics import deletion, infidelity, insertion, mu_fidelity, sensitivity_max
from ig_plugin.metrics._scores import compiled_for

N, D = 12, 6
X = seeded_floats((N, D), seed=130)
A = seeded_floats((N, D), seed=131)
TARGET = np.arange(N) % 2


def counted_model(rows):
    inputs = keras.Input((D,))
    hidden = keras.layers.Dense(5, activation="tanh")(RowCounter(rows)(inputs))
    return set_seeded_weights(keras.Model(inputs, keras.layers.Dense(2)(hidden)), seed=132)


def row_cost(model):
    """What one scored row of X costs, as the explainers' "auto" estimates it."""
    inputs = normalise_inputs(X)
    cost = compiled_for(model).point_cost(
        inputs.arrays, ModelCall(inputs.layout), ForwardKwargs({}, {})
    )
    return cost.forward_bytes()


def scores(name, model, **batching):
    """The metric's per-sample values (for the curves, every point of them)."""
    if name == "deletion":
        return deletion(model, X, A, TARGET, steps=5, **batching).scores
    if name == "insertion":
        return insertion(model, X, A, TARGET, steps=5, **batching).scores
    if name == "infidelity":
        return infidelity(model, X, A, TARGET, n_perturb_samples=6, seed=0, **batching)
    return mu_fidelity(model, X, A, TARGET, subset_percent=0.5, n_samples=8, seed=0, **batching)


METRICS = ["deletion", "insertion", "infidelity", "mu_fidelity"]


@pytest.mark.parametrize("name", METRICS)
def test_auto_with_the_default_budget_equals_a_fixed_batch_size(name):
    rows = []
    model = counted_model(rows)
    fixed = scores(name, model, batch_size=5)
    assert max(rows) == 5
    rows.clear()
    auto = scores(name, model, batch_size="auto")
    np.testing.assert_allclose(auto, fixed, rtol=1e-6, atol=1e-6)
    # A few kilobytes a row: the default budget holds every point of these small calls at once.
    assert max(rows) > 5


@pytest.mark.parametrize("name", METRICS)
def test_auto_with_a_small_budget_takes_the_rows_it_holds(name):
    rows = []
    model = counted_model(rows)
    fixed = scores(name, model, batch_size=64)
    rows.clear()
    auto = scores(name, model, batch_size="auto", memory_budget=7 * row_cost(model))
    np.testing.assert_allclose(auto, fixed, rtol=1e-6, atol=1e-6)
    assert max(rows) == 7


@pytest.mark.parametrize("name", METRICS)
def test_a_budget_too_small_for_one_row_names_memory_budget(name):
    model = counted_model([])
    with pytest.raises(ValueError, match=r"`memory_budget`.*fixed batch_size"):
        scores(name, model, batch_size="auto", memory_budget=row_cost(model) - 1)


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize("batch_size", [None, 16])
def test_memory_budget_needs_auto(name, batch_size):
    rows = []
    with pytest.raises(ValueError, match=r"`memory_budget`.*batch_size='auto'"):
        scores(name, counted_model(rows), batch_size=batch_size, memory_budget=1 << 20)
    assert rows == []


def test_auto_on_two_inputs_equals_a_fixed_batch_size():
    model = linear_multi_input_model(
        seeded_floats((2, 3), seed=133), seeded_floats((4, 3), seed=134)
    )
    both = {"X": [X[:, :2], X[:, 2:]], "attributions": [A[:, :2], A[:, 2:]], "target": TARGET}
    fixed = deletion(model, **both, steps=4, batch_size=3)
    auto = deletion(model, **both, steps=4, batch_size="auto", memory_budget=1 << 12)
    np.testing.assert_allclose(auto.scores, fixed.scores, rtol=1e-6, atol=1e-6)
    fixed_infidelity = infidelity(model, **both, n_perturb_samples=4, seed=0, batch_size=3)
    auto_infidelity = infidelity(model, **both, n_perturb_samples=4, seed=0, batch_size="auto")
    np.testing.assert_allclose(auto_infidelity, fixed_infidelity, rtol=1e-6, atol=1e-6)


def test_threads_with_auto_on_one_fresh_model_get_the_serial_results():
    """The first calls trace the model and estimate its cost in several threads at once."""
    rows = []
    model = counted_model(rows)
    expected = {name: scores(name, counted_model([]), batch_size=64) for name in METRICS}
    cost = row_cost(counted_model([]))  # the same architecture costs the same
    results = {}

    def task(index):
        def run():
            budget = (3 + index) * cost
            results[index] = {
                name: scores(name, model, batch_size="auto", memory_budget=budget)
                for name in METRICS
            }

        return run

    run_together([task(index) for index in range(4)])
    assert max(rows) <= 6
    for index in range(4):
        for name in METRICS:
            np.testing.assert_allclose(results[index][name], expected[name], rtol=1e-6, atol=1e-6)


def recording_explain_fn(calls):
    """A callable explanation, ``phi = w * x`` (IG of a linear model from 0), that records how
    many rows each call explains."""
    w = seeded_floats((D,), seed=135)

    def explain_fn(rows, target):
        calls.append(len(rows))
        return rows * w

    return explain_fn


#: What one perturbed copy of a float32 row of X costs under sensitivity_max's "auto", as its
#: docstring counts it: the row and its float64 noise (16 + 4 bytes a feature), and the
#: attributions returned and held as float64 three times (4 + 24).
COPY_BYTES = D * (16 + 4) + D * (4 + 3 * 8)


def test_sensitivity_max_with_auto_equals_a_fixed_batch_size():
    calls = []
    explain_fn = recording_explain_fn(calls)
    fixed = sensitivity_max(explain_fn, X, TARGET, n_perturb_samples=5, seed=0, batch_size=10)
    assert max(calls) == 10
    calls.clear()
    auto = sensitivity_max(explain_fn, X, TARGET, n_perturb_samples=5, seed=0, batch_size="auto")
    np.testing.assert_array_equal(auto, fixed)
    # The first call measures the first sample's attributions; the default budget then holds
    # every copy in one call.
    assert calls == [1, N, N * 5]


def test_sensitivity_max_with_a_small_budget_explains_the_copies_it_holds():
    calls = []
    explain_fn = recording_explain_fn(calls)
    fixed = sensitivity_max(explain_fn, X, TARGET, n_perturb_samples=3, seed=0, batch_size=64)
    calls.clear()
    auto = sensitivity_max(
        explain_fn,
        X,
        TARGET,
        n_perturb_samples=3,
        seed=0,
        batch_size="auto",
        memory_budget=7 * COPY_BYTES,
    )
    np.testing.assert_array_equal(auto, fixed)
    copies = calls[2::2]  # after the measuring call: X's rows, then their copies, in turn
    assert max(copies) == 6, "two samples of three copies each: the most within seven copies"
    assert sum(copies) == 3 * N


def test_sensitivity_max_with_a_budget_too_small_for_one_copy_names_memory_budget():
    with pytest.raises(ValueError, match=r"`memory_budget`.*perturbed copy.*fixed batch_size"):
        sensitivity_max(
            recording_explain_fn([]), X, TARGET, batch_size="auto", memory_budget=COPY_BYTES - 1
        )


@pytest.mark.parametrize("batch_size", [None, 16])
def test_sensitivity_max_memory_budget_needs_auto(batch_size):
    calls = []
    with pytest.raises(ValueError, match=r"`memory_budget`.*batch_size='auto'"):
        sensitivity_max(
            recording_explain_fn(calls), X, TARGET, batch_size=batch_size, memory_budget=1 << 20
        )
    assert calls == []


def test_sensitivity_max_with_auto_on_an_explainer():
    model = counted_model([])
    explainer = IntegratedGradients(model, n_steps=8)
    fixed = sensitivity_max(explainer, X, TARGET, n_perturb_samples=4, seed=1, batch_size=5)
    auto = sensitivity_max(explainer, X, TARGET, n_perturb_samples=4, seed=1, batch_size="auto")
    np.testing.assert_allclose(auto, fixed, rtol=1e-5, atol=1e-6)
