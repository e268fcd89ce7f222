"""Bad input to the metrics: the right exception, a message naming the argument, and no TensorFlow
work before it (a counting model proves the model never ran, not even to trace)."""

import numpy as np
import pytest

from ig_plugin import IntegratedGradients
from ig_plugin.metrics import (
    deletion,
    infidelity,
    insertion,
    model_randomization,
    mu_fidelity,
    quantus_explain_func,
    sensitivity_max,
)

N = 4
X = np.random.default_rng(60).normal(size=(N, 3)).astype("float32")
A = np.random.default_rng(61).normal(size=(N, 3)).astype("float32")
IMAGES = np.random.default_rng(62).normal(size=(N, 4, 4, 1)).astype("float32")


def test_the_counting_model_sees_valid_calls(counting):
    """The control for the tests below: valid calls do reach the model."""
    infidelity(counting, X, A, target=0, n_perturb_samples=2, seed=0)
    assert counting.calls > 0


# Shared by every metric that scores a model: (arguments, exception, words of the message).
SHARED_CASES = {
    "attributions of another shape": ({"attributions": A[:, :2]}, ValueError, "`attributions`"),
    "attributions of other samples": ({"attributions": A[:3]}, ValueError, "`attributions`"),
    "attributions for two inputs": ({"attributions": [A, A]}, ValueError, "`attributions`"),
    "attributions as a list of lists": ({"attributions": A.tolist()}, TypeError, "`attributions`"),
    "attributions of strings": ({"attributions": A.astype(str)}, TypeError, "`attributions`"),
    "attributions with NaN": ({"attributions": A * np.nan}, ValueError, "`attributions`"),
    "attributions as a dict for an array X": ({"attributions": {"x": A}}, TypeError, "dict"),
    "X not an array": ({"X": X.tolist()}, TypeError, "`X`"),
    "X with infinity": ({"X": np.full_like(X, np.inf)}, ValueError, "`X`"),
    "target of other samples": ({"target": [0, 1]}, ValueError, "`target`"),
    "target a float": ({"target": 0.5}, TypeError, "`target`"),
    "target negative": ({"target": -1}, ValueError, "`target`"),
    "batch_size zero": ({"batch_size": 0}, ValueError, "`batch_size`"),
    "batch_size a float": ({"batch_size": 2.0}, TypeError, "`batch_size`"),
    "batch_size another string": ({"batch_size": "max"}, TypeError, "'auto'"),
    "memory_budget without auto": ({"memory_budget": 1 << 20}, ValueError, "`memory_budget`"),
    "memory_budget zero": (
        {"batch_size": "auto", "memory_budget": 0},
        ValueError,
        "`memory_budget`",
    ),
    "memory_budget a float": (
        {"batch_size": "auto", "memory_budget": 1e6},
        TypeError,
        "`memory_budget`",
    ),
}


def call_with(metric, counting, **changes):
    arguments = {"model": counting, "X": X, "attributions": A, "target": 0, **changes}
    return metric(**arguments)


@pytest.mark.parametrize("metric", [infidelity, deletion, insertion, mu_fidelity])
@pytest.mark.parametrize("case", sorted(SHARED_CASES))
def test_shared_arguments(counting, metric, case):
    changes, error, words = SHARED_CASES[case]
    with pytest.raises(error, match=words):
        call_with(metric, counting, **changes)
    assert counting.calls == 0


OWN_CASES = {
    infidelity: {
        "n_perturb_samples zero": ({"n_perturb_samples": 0}, ValueError, "`n_perturb_samples`"),
        "perturb_fn not callable": ({"perturb_fn": "gaussian"}, TypeError, "`perturb_fn`"),
        "normalize a string": ({"normalize": "yes"}, TypeError, "`normalize`"),
        "seed negative": ({"seed": -1}, ValueError, "`seed`"),
    },
    deletion: {
        "steps zero": ({"steps": 0}, ValueError, "`steps`"),
        "steps negative": ({"steps": -3}, ValueError, "`steps`"),
        "steps a float": ({"steps": 2.5}, TypeError, "`steps`"),
        "baseline of another shape": ({"baseline": np.zeros((2, 3))}, ValueError, "`baseline`"),
        "baseline a string": ({"baseline": "zeros"}, TypeError, "`baseline`"),
        "baseline infinite": ({"baseline": np.inf}, ValueError, "`baseline`"),
    },
    insertion: {
        "steps zero": ({"steps": 0}, ValueError, "`steps`"),
        "baseline of another shape": ({"baseline": np.zeros(4)}, ValueError, "`baseline`"),
    },
    mu_fidelity: {
        "grid_size zero": ({"grid_size": 0}, ValueError, "`grid_size`"),
        "subset_percent zero": ({"subset_percent": 0.0}, ValueError, "`subset_percent`"),
        "subset_percent one": ({"subset_percent": 1.0}, ValueError, "`subset_percent`"),
        "subsets of no feature": ({"subset_percent": 0.2}, ValueError, "`subset_percent`"),
        "n_samples one": ({"n_samples": 1}, ValueError, "`n_samples`"),
        "grid larger than the images": (
            {"X": IMAGES, "attributions": IMAGES, "grid_size": 5},
            ValueError,
            "`grid_size`",
        ),
        "baseline a list for one input": ({"baseline": [0.0]}, TypeError, "`baseline`"),
    },
}


@pytest.mark.parametrize(
    ("metric", "case"),
    [(metric, case) for metric, cases in OWN_CASES.items() for case in sorted(cases)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_own_arguments(counting, metric, case):
    changes, error, words = OWN_CASES[metric][case]
    with pytest.raises(error, match=words):
        call_with(metric, counting, **changes)
    assert counting.calls == 0


def test_a_model_that_is_not_callable():
    with pytest.raises(TypeError, match="`model`"):
        deletion("model.keras", X, A, 0)


def test_perturb_fn_returning_other_shapes(counting):
    def drop_a_row(rows, rng):
        return rows[1:], rows[1:]

    with pytest.raises(ValueError, match="`perturb_fn` must return I shaped like its rows"):
        infidelity(counting, X, A, 0, perturb_fn=drop_a_row)

    def not_a_number(rows, rng):
        return rows * np.nan, rows

    with pytest.raises(ValueError, match="`perturb_fn` returned I that are not all finite"):
        infidelity(counting, X, A, 0, perturb_fn=not_a_number)

    def one_array(rows, rng):
        return rows

    with pytest.raises(TypeError, match="`perturb_fn` must return a tuple"):
        infidelity(counting, X, A, 0, perturb_fn=one_array)


def test_a_target_outside_the_output_fails_before_tensorflow_when_declared(linear):
    with pytest.raises(ValueError, match="`target` is out of range"):
        deletion(linear, X, A, target=5)


def test_a_classifier_needs_a_target(linear):
    with pytest.raises(ValueError, match="`target` is required"):
        insertion(linear, X, A)


# --- sensitivity_max ---------------------------------------------------------------------------

SENSITIVITY_CASES = {
    "radius negative": ({"perturb_radius": -0.1}, ValueError, "`perturb_radius`"),
    "radius infinite": ({"perturb_radius": np.inf}, ValueError, "`perturb_radius`"),
    "radius a string": ({"perturb_radius": "small"}, TypeError, "`perturb_radius`"),
    "n_perturb_samples zero": ({"n_perturb_samples": 0}, ValueError, "`n_perturb_samples`"),
    "norm_ord nuclear": ({"norm_ord": "nuc"}, ValueError, "`norm_ord`"),
    "norm_ord zero": ({"norm_ord": 0}, ValueError, "`norm_ord`"),
    "norm_ord a list": ({"norm_ord": [2]}, TypeError, "`norm_ord`"),
    "seed a float": ({"seed": 1.5}, TypeError, "`seed`"),
    "batch_size zero": ({"batch_size": 0}, ValueError, "`batch_size`"),
    "target of other samples": ({"target": [0, 1, 2]}, ValueError, "`target`"),
    "X a list of lists": ({"X": X.tolist()}, TypeError, "`X`"),
}


@pytest.mark.parametrize("case", sorted(SENSITIVITY_CASES))
def test_sensitivity_max_arguments(counting, case):
    changes, error, words = SENSITIVITY_CASES[case]
    arguments = {"explain_fn": IntegratedGradients(counting), "X": X, "target": 0, **changes}
    with pytest.raises(error, match=words):
        sensitivity_max(**arguments)
    assert counting.calls == 0


def test_sensitivity_max_runs_the_explainers_checks_first(counting):
    explainer = IntegratedGradients(counting, n_steps=2)
    with pytest.raises(ValueError, match="at most one of `target`"):
        sensitivity_max(explainer.with_target_fn(np.argmax), X, target=0)
    assert counting.calls == 0


def test_sensitivity_max_needs_something_that_explains():
    with pytest.raises(TypeError, match="`explain_fn`"):
        sensitivity_max(np.zeros(3), X)


def test_an_explain_fn_returning_other_rows_or_shapes():
    with pytest.raises(ValueError, match=r"`explain_fn\(X, target\)` must return one row"):
        sensitivity_max(lambda rows, target: rows[:2], X)
    with pytest.raises(TypeError, match=r"`explain_fn\(X, target\)` must return numpy arrays"):
        sensitivity_max(lambda rows, target: rows.tolist(), X)

    def shape_of_the_call(rows, target):
        return rows if len(rows) == N else rows[:, :2]

    with pytest.raises(ValueError, match="one shape for X and its perturbed copies"):
        sensitivity_max(shape_of_the_call, X)


# --- model_randomization and quantus_explain_func -------------------------------------------


def test_model_randomization_arguments(counting):
    explainer = IntegratedGradients(counting, n_steps=2)
    with pytest.raises(ValueError, match="`order`"):
        model_randomization(explainer, X, 0, order="bottom_up")
    with pytest.raises(ValueError, match="`seed`"):
        model_randomization(explainer, X, 0, seed=-2)
    with pytest.raises(ValueError, match="`target`"):
        model_randomization(explainer, X, [0, 1])
    with pytest.raises(TypeError, match="`explainer`"):
        model_randomization(counting, X, 0)
    assert counting.calls == 0


def test_model_randomization_needs_weights():
    from compat import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation("tanh")(inputs))
    with pytest.raises(ValueError, match="no layer with trainable weights"):
        model_randomization(IntegratedGradients(model), X)


def test_quantus_explain_func_needs_a_class():
    with pytest.raises(TypeError, match="`explainer_class`"):
        quantus_explain_func("IntegratedGradients")


def test_arrays_are_left_unchanged(linear):
    given_x, given_a = X.copy(), A.copy()
    infidelity(linear, X, A, 0, seed=0)
    deletion(linear, X, A, 0, baseline=given_x[:1])
    insertion(linear, X, A, 0)
    mu_fidelity(linear, X, A, 0, subset_percent=0.5, seed=0)
    sensitivity_max(IntegratedGradients(linear), X, 0, seed=0)
    np.testing.assert_array_equal(X, given_x)
    np.testing.assert_array_equal(A, given_a)
